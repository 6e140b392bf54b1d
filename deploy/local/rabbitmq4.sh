#!/usr/bin/env bash
# Run Debian 13 (trixie)'s RabbitMQ 4.0 as a second, separate node beside the
# machine's own RabbitMQ (3.10 at 127.0.0.1:5672, epmd on 4369), to test
# clerk-sync against both. The local node is never touched.
#
#   deploy/local/rabbitmq4.sh start        install (first time only) and start;
#                                          prints the AMQP URL and the version
#   deploy/local/rabbitmq4.sh stop         stop this node (and its own epmd)
#   deploy/local/rabbitmq4.sh status       is it running? (exit 0 if so)
#   deploy/local/rabbitmq4.sh url          print the AMQP URL
#   deploy/local/rabbitmq4.sh ctl ARGS...  run this node's rabbitmqctl, e.g.
#                                          ctl set_vm_memory_high_watermark 0.001
#
# Everything lives in ~/.cache/clerk-sync/rabbitmq4/, outside the repository
# (so that `cargo clean` or removing a clone never walks into the /proc and
# /dev mounted in it while the node runs): root/ is a minimal
# trixie system made by debootstrap (its rabbitmq-server and Erlang are run
# inside it with chroot); the node's data and logs are root/var/lib/rabbitmq
# and root/var/log/rabbitmq; server.out has the node's console output.
# Environment (defaults in brackets):
#   RABBITMQ4_PORT [5673]            AMQP port, on 127.0.0.1 only
#   RABBITMQ4_DIST_PORT [PORT+20000] Erlang distribution port
#   RABBITMQ4_EPMD_PORT [4370]       this node's own epmd (the local one is 4369)
#   RABBITMQ4_NODENAME [rabbit4@localhost]
#   RABBITMQ4_DIR [${XDG_CACHE_HOME:-~/.cache}/clerk-sync/rabbitmq4]
#   RABBITMQ4_MIRROR [http://deb.debian.org/debian]
# Needs root (debootstrap, chroot, mount). The first start downloads about
# 80 MB of packages and takes 2-3 minutes (about 300 MB on disk); later
# starts take 10-20 s.
set -euo pipefail

base=${RABBITMQ4_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clerk-sync/rabbitmq4}
root=$base/root
port=${RABBITMQ4_PORT:-5673}
dist_port=${RABBITMQ4_DIST_PORT:-$((port + 20000))}
epmd_port=${RABBITMQ4_EPMD_PORT:-4370}
node=${RABBITMQ4_NODENAME:-rabbit4@localhost}
mirror=${RABBITMQ4_MIRROR:-http://deb.debian.org/debian}
url="amqp://guest:guest@127.0.0.1:$port/%2f"

# The comment block at the top of this file.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2; }
die() { echo "rabbitmq4.sh: $*" >&2; exit 1; }

# The local node's settings must never leak in: every command inside the
# chroot gets a clean environment naming this node, its epmd port and a HOME
# (where the Erlang cookie lives) of its own.
in_root_cmd=(
  chroot "$root" /usr/bin/env -i
  PATH=/usr/sbin:/usr/bin:/sbin:/bin
  HOME=/var/lib/rabbitmq
  LANG=C.UTF-8 LC_ALL=C.UTF-8
  ERL_EPMD_PORT="$epmd_port"
  ERL_EPMD_ADDRESS=127.0.0.1
  RABBITMQ_NODENAME="$node"
  RABBITMQ_USE_LONGNAME=false
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  RABBITMQ_NODE_PORT="$port"
  RABBITMQ_DIST_PORT="$dist_port"
  RABBITMQ_CONFIG_FILE=/etc/rabbitmq/rabbitmq.conf
  RABBITMQ_ENABLED_PLUGINS_FILE=/etc/rabbitmq/enabled_plugins
  RABBITMQ_MNESIA_BASE=/var/lib/rabbitmq/mnesia
  RABBITMQ_LOG_BASE=/var/log/rabbitmq
)
in_root() { "${in_root_cmd[@]}" "$@"; }

# Unmount whatever is mounted at or below $1 (deepest first).
unmount_below() {
  local dir mounts m
  dir=$(realpath -m "$1")
  mounts=$(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
  for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

# Erlang and rabbitmq-server want /proc (memory, CPU count, open files) and a
# usable /dev inside the chroot.
mount_runtime() {
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  if [ ! -c "$root/dev/null" ] || [ ! -c "$root/dev/urandom" ]; then
    mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
  fi
}

install_root() {
  # Installed once; root/ appears only when the whole install has succeeded.
  [ -x "$root/usr/lib/rabbitmq/bin/rabbitmq-server" ] && return 0
  [ "$(id -u)" = 0 ] || die "the first start installs with debootstrap: run as root"
  if ! command -v debootstrap >/dev/null; then
    echo "installing debootstrap"
    apt-get install -y -q debootstrap >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; }
  fi
  local tmp=$base/root.partial
  mkdir -p "$base"
  # An interrupted install: debootstrap may have left /proc, /sys or a bind
  # of the host's /dev mounted in it, so unmount before deleting (and never
  # cross into another file system).
  if [ -e "$tmp" ]; then
    unmount_below "$tmp"
    rm -rf --one-file-system "$tmp"
  fi
  echo "installing Debian trixie with rabbitmq-server into $root (a few minutes)"
  # debootstrap puts a policy-rc.d in place while installing, so the
  # package's scripts start no node of their own.
  if ! debootstrap --variant=minbase --include=rabbitmq-server trixie "$tmp" "$mirror" \
      >"$base/debootstrap.log" 2>&1; then
    unmount_below "$tmp"
    tail -n 20 "$base/debootstrap.log" >&2
    die "debootstrap failed (full log: $base/debootstrap.log)"
  fi
  unmount_below "$tmp"
  rm -f "$tmp"/var/cache/apt/archives/*.deb

  # This node's configuration, inside the chroot.
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$tmp/etc/hosts"
  cat > "$tmp/etc/rabbitmq/rabbitmq.conf" <<EOF
# Written by deploy/local/rabbitmq4.sh: a test node on 127.0.0.1 only. The
# port is also set by RABBITMQ_NODE_PORT in the script.
listeners.tcp.default = 127.0.0.1:$port
distribution.listener.interface = 127.0.0.1
# guest/guest, usable from 127.0.0.1 only (RabbitMQ's default).
default_user = guest
default_pass = guest
loopback_users.guest = true
log.console = false
log.file.level = info
EOF
  # No plugins (no management UI).
  echo '[].' > "$tmp/etc/rabbitmq/enabled_plugins"
  # The Debian package's own environment file would name another node.
  : > "$tmp/etc/rabbitmq/rabbitmq-env.conf"
  mv "$tmp" "$root"
}

# Is our node up? (Its own epmd port and node name, so never the local node.)
running() {
  [ -x "$root/usr/lib/rabbitmq/bin/rabbitmq-server" ] || return 1
  mountpoint -q "$root/proc" || return 1
  in_root rabbitmq-diagnostics -q ping --timeout 5 >/dev/null 2>&1
}

# True once the port answers the AMQP 0-9-1 protocol header with a frame
# (connection.start), i.e. the node accepts AMQP connections.
amqp_ready() {
  local reply
  reply=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
    printf "AMQP\0\0\011\001" >&3
    head -c 7 <&3 | od -An -tx1' 2>/dev/null) || return 1
  [[ $reply == *01\ 00\ 00* ]]
}

start() {
  install_root
  [ "$(id -u)" = 0 ] || die "run as root (chroot)"
  mount_runtime
  if running; then
    echo "$url"
    return 0
  fi
  if amqp_ready || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is taken by something else (set RABBITMQ4_PORT)"
  fi
  # Keep the configuration file's listener in step with RABBITMQ4_PORT (it
  # was written with the port of the first start).
  sed -i "s/^listeners.tcp.default = .*/listeners.tcp.default = 127.0.0.1:$port/" \
    "$root/etc/rabbitmq/rabbitmq.conf"
  echo "starting $node (AMQP 127.0.0.1:$port, distribution $dist_port, epmd $epmd_port)"
  # rabbitmq-server runs in the foreground: detach it into its own session,
  # console output to server.out. Run as root inside the chroot, so the
  # server and the CLI share HOME's Erlang cookie.
  setsid "${in_root_cmd[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server \
    >>"$base/server.out" 2>&1 </dev/null &
  for _ in $(seq 1 240); do
    amqp_ready && break
    if ! kill -0 $! 2>/dev/null; then
      tail -n 30 "$base/server.out" >&2
      die "the node exited while starting (see $base/server.out and $root/var/log/rabbitmq/)"
    fi
    sleep 0.5
  done
  amqp_ready || die "no AMQP on 127.0.0.1:$port after 120 s (see $root/var/log/rabbitmq/)"
  in_root rabbitmqctl -q await_startup --timeout 60 >/dev/null
  echo "RabbitMQ $(in_root rabbitmq-diagnostics -q server_version)"
  echo "$url"
}

stop() {
  [ -d "$root" ] || { echo "not installed"; return 0; }
  if running; then
    echo "stopping $node"
    in_root rabbitmqctl -q stop >/dev/null
    # rabbitmqctl stop returns once the node is down; wait for the port too.
    for _ in $(seq 1 60); do amqp_ready || break; sleep 0.5; done
  else
    echo "$node is not running"
  fi
  # Our own epmd (port $epmd_port) only; the local one on 4369 stays.
  if mountpoint -q "$root/proc"; then
    in_root epmd -port "$epmd_port" -kill >/dev/null 2>&1 || true
  fi
  unmount_below "$root"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running: $url"; else echo "stopped"; exit 1; fi ;;
  url) echo "$url" ;;
  ctl)
    shift
    [ -x "$root/usr/lib/rabbitmq/bin/rabbitmqctl" ] || die "not installed: run $0 start"
    mountpoint -q "$root/proc" || die "not running: run $0 start"
    in_root rabbitmqctl "$@"
    ;;
  *) usage ;;
esac
