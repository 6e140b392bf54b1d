#!/usr/bin/env bash
# Sign a Clerk event as Svix does and POST it to a running ingest, with
# `clerk-sync-worker send` (built here if needed):
#   deploy/local/send-test-event.sh PAYLOAD.json [URL] [SEND-OPTIONS...]
#       the file's bytes, exactly as they are
#   deploy/local/send-test-event.sh SEND-ARGUMENTS...
#       e.g. user.created --email ada@example.com --first-name Ada
#            --scenario out-of-order        (see: clerk-sync-worker send --help)
# The secret is CLERK_WEBHOOK_SECRET, else the one deploy/local/up.sh made;
# the ingest is at INGEST_LISTEN (default 127.0.0.1:8080) unless a URL is given.
set -euo pipefail
[ $# -gt 0 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# A payload file: a path that exists or names a .json file.
if [ -f "$1" ] || [[ $1 == *.json ]]; then
  payload=$1
  [[ $payload == /* ]] || payload=$PWD/$payload
  shift
  args=(--file "$payload")
  if [ $# -gt 0 ] && [[ $1 != -* ]]; then
    args+=(--url "$1")
    shift
  fi
  set -- "${args[@]}" "$@"
fi

cd "$(dirname "$0")/../.."
secret=${CLERK_WEBHOOK_SECRET:-$(cat target/local/secret 2>/dev/null || true)}
[ -n "$secret" ] || { echo "set CLERK_WEBHOOK_SECRET or run deploy/local/up.sh first" >&2; exit 2; }
export CLERK_WEBHOOK_SECRET=$secret
export INGEST_LISTEN=${INGEST_LISTEN:-127.0.0.1:8080}

cargo build --release --quiet --bin clerk-sync-worker
exec target/release/clerk-sync-worker send "$@"
