#!/usr/bin/env bash
# A three-node RabbitMQ cluster of the machine's own RabbitMQ package, on
# this one machine, beside the machine's node (rabbit@localhost on 5672),
# which is never touched: the nodes have their own names, ports, data
# folders, Erlang cookie and plugin list.
#
#   deploy/local/rabbitmq-cluster.sh start        start the three nodes and cluster
#                                                 them; prints AMQP_URL (all three)
#   deploy/local/rabbitmq-cluster.sh stop         stop them and remove their data
#   deploy/local/rabbitmq-cluster.sh status       is every node running? (exit 0 if so)
#   deploy/local/rabbitmq-cluster.sh url          print AMQP_URL (the three nodes' URLs)
#   deploy/local/rabbitmq-cluster.sh management   print node 1's management API URL
#   deploy/local/rabbitmq-cluster.sh ctl N ARGS   rabbitmqctl against node N (1-3)
#   deploy/local/rabbitmq-cluster.sh queues N ARGS  rabbitmq-queues against node N
#   deploy/local/rabbitmq-cluster.sh kill N       kill -9 node N's Erlang VM (a crash)
#   deploy/local/rabbitmq-cluster.sh revive N     start node N again after a kill
#   deploy/local/rabbitmq-cluster.sh rebalance    spread the quorum queues' leaders
#                                                 evenly over the nodes
#   deploy/local/rabbitmq-cluster.sh cut N        (network namespaces only) unplug node N
#                                                 from the others and every client
#   deploy/local/rabbitmq-cluster.sh heal N       plug it back
#
# Quorum queues declared on this cluster get a member on each of the three
# nodes (a quorum queue's initial group size is, by default, every node of
# the cluster), and their leaders are placed on the node with the fewest
# (queue_leader_locator = balanced); `rebalance` spreads them again after
# a node came back. A network partition pauses the minority side
# (cluster_partition_handling = pause_minority), as in production.
#
# Environment (defaults in brackets):
#   RABBITMQ_CLUSTER_NAME [clerk-cluster]  nodes are NAME-1@localhost .. NAME-3@localhost
#   RABBITMQ_CLUSTER_PORT [5701]           AMQP ports PORT, PORT+1, PORT+2 on 127.0.0.1;
#                                          distribution PORT+20000.., management PORT+10000..
#   RABBITMQ_CLUSTER_DIR [${XDG_CACHE_HOME:-~/.cache}/clerk-sync/rabbitmq-cluster/NAME]
#   RABBITMQ_CLUSTER_NETNS [unset]         e.g. 10.77.5: each node in a network namespace
#                                          of its own, at 10.77.5.11-13 with the standard
#                                          ports (AMQP 5672, management 15672), joined by
#                                          a bridge at 10.77.5.1, so that `cut` can
#                                          partition one; `guest` may then log in from
#                                          the host (loopback_users = none), and the
#                                          Erlang distribution notices a lost peer
#                                          within about 10 s (net_ticktime 10)
# Several clusters can run at once under different names and ports. Needs
# root (the nodes run as the user who starts them, with HOME in the
# cluster's folder). A start takes about 20-40 s on 2 cores.
set -euo pipefail

name=${RABBITMQ_CLUSTER_NAME:-clerk-cluster}
base_port=${RABBITMQ_CLUSTER_PORT:-5701}
dir=${RABBITMQ_CLUSTER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clerk-sync/rabbitmq-cluster/$name}
bin=/usr/lib/rabbitmq/bin
nodes=(1 2 3)
netns=${RABBITMQ_CLUSTER_NETNS:-}
# Interface names are at most 15 characters: a short tag of the name.
tag=$(printf %s "$name" | md5sum | cut -c1-6)
bridge="cs${tag}br"

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2; }
die() { echo "rabbitmq-cluster.sh: $*" >&2; exit 1; }

namespace() { echo "cs${tag}-$1"; }
host_veth() { echo "cs${tag}h$1"; }
node_host() { if [ -n "$netns" ]; then echo "$netns.$((10 + $1))"; else echo 127.0.0.1; fi; }
node_name() { if [ -n "$netns" ]; then echo "$name-$1@$(node_host "$1")"; else echo "$name-$1@localhost"; fi; }
amqp_port() { if [ -n "$netns" ]; then echo 5672; else echo $((base_port + $1 - 1)); fi; }
node_url() { echo "amqp://guest:guest@$(node_host "$1"):$(amqp_port "$1")/%2f"; }
urls() { local i out=(); for i in "${nodes[@]}"; do out+=("$(node_url "$i")"); done; (IFS=,; echo "${out[*]}"); }

# Every command runs with a clean environment naming node $1: the machine's
# own node's settings (/etc/rabbitmq/rabbitmq-env.conf, its cookie in
# /var/lib/rabbitmq) must never leak in.
on_node() {
  local i=$1; shift
  local port; port=$(amqp_port "$i")
  local in_ns=() longname=false erl_args=""
  if [ -n "$netns" ]; then
    in_ns=(ip netns exec "$(namespace "$i")")
    longname=true
    erl_args="-kernel net_ticktime 10"
  fi
  "${in_ns[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$dir" LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    ERL_EPMD_ADDRESS="$(node_host "$i")" \
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
    RABBITMQ_NODENAME="$(node_name "$i")" RABBITMQ_USE_LONGNAME=$longname \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$erl_args" \
    RABBITMQ_NODE_IP_ADDRESS="$(node_host "$i")" RABBITMQ_NODE_PORT="$port" \
    RABBITMQ_DIST_PORT=$((port + 20000)) \
    RABBITMQ_CONFIG_FILE="$dir/n$i/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$dir/n$i/mnesia" RABBITMQ_LOG_BASE="$dir/n$i/log" \
    RABBITMQ_PID_FILE="$dir/n$i/pid" \
    ERL_CRASH_DUMP="$dir/n$i/erl_crash.dump" \
    "$@"
}
ctl() { local i=$1; shift; on_node "$i" "$bin/rabbitmqctl" -n "$(node_name "$i")" "$@"; }

configure() {
  local i port
  mkdir -p "$dir"
  [ -f "$dir/.erlang.cookie" ] || { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$dir/.erlang.cookie"; chmod 400 "$dir/.erlang.cookie"; }
  : >"$dir/rabbitmq-env.conf"
  echo '[rabbitmq_management].' >"$dir/enabled_plugins"
  for i in "${nodes[@]}"; do
    port=$(amqp_port "$i")
    mkdir -p "$dir/n$i/log"
    cat >"$dir/n$i/rabbitmq.conf" <<EOF
listeners.tcp.default = $(node_host "$i"):$port
management.tcp.ip = $(node_host "$i")
management.tcp.port = $((port + 10000))
cluster_partition_handling = pause_minority
queue_leader_locator = balanced
# Small machines: do not block publishers for memory a test cluster uses.
vm_memory_high_watermark.relative = 0.6
disk_free_limit.absolute = 200MB
EOF
    if [ -n "$netns" ]; then echo "loopback_users = none" >>"$dir/n$i/rabbitmq.conf"; fi
  done
}

# The bridge and one namespace per node, each with a veth pair to it.
network_up() {
  local i ns
  [ -n "$netns" ] || return 0
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$netns.1/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  for i in "${nodes[@]}"; do
    ns=$(namespace "$i")
    ip netns list | grep -qw "$ns" && continue
    ip netns add "$ns"
    ip link add "$(host_veth "$i")" type veth peer name eth0 netns "$ns"
    ip link set "$(host_veth "$i")" master "$bridge"
    ip link set "$(host_veth "$i")" up
    ip netns exec "$ns" ip addr add "$(node_host "$i")/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
  done
}

# Remove them, with whatever still runs inside a namespace (its epmd).
network_down() {
  local i ns pids
  [ -n "$netns" ] || return 0
  for i in "${nodes[@]}"; do
    ns=$(namespace "$i")
    ip netns list | grep -qw "$ns" || continue
    pids=$(ip netns pids "$ns")
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    ip netns del "$ns"
  done
  ip link del "$bridge" 2>/dev/null || true
}

start_node() {
  local waited=0
  on_node "$1" "$bin/rabbitmq-server" -detached >"$dir/n$1/server.out" 2>&1 || true
  # await_startup fails at once until the node has registered with epmd.
  until ctl "$1" await_startup --timeout 60 >/dev/null 2>&1; do
    waited=$((waited + 1))
    if [ "$waited" -gt 60 ]; then
      tail -n 30 "$dir/n$1/server.out" "$dir/n$1/log/"*.log >&2 2>/dev/null || true
      die "node $1 did not start within about 2 minutes"
    fi
    sleep 1
  done
}

# A cluster that was never started (or was removed) has no cookie: nothing runs.
running() { [ -f "$dir/.erlang.cookie" ] && ctl "$1" status >/dev/null 2>&1; }

start() {
  local i
  configure
  network_up
  for i in "${nodes[@]}"; do
    running "$i" || start_node "$i"
  done
  for i in 2 3; do
    if ! ctl "$i" cluster_status --formatter json 2>/dev/null | grep -q "$(node_name 1)"; then
      { ctl "$i" stop_app && ctl "$i" join_cluster "$(node_name 1)" && ctl "$i" start_app; } \
        >"$dir/n$i/join.out" 2>&1 || { cat "$dir/n$i/join.out" >&2; die "node $i could not join $(node_name 1)"; }
    fi
  done
  ctl 1 await_online_nodes 3 --timeout 120 >/dev/null
  echo "RabbitMQ cluster $name: nodes $(node_name 1), $(node_name 2), $(node_name 3) running $(ctl 1 version 2>/dev/null)" >&2
  urls
}

stop() {
  local i pid
  for i in "${nodes[@]}"; do
    if running "$i"; then ctl "$i" stop >/dev/null 2>&1 || true; fi
    if [ -f "$dir/n$i/pid" ] && pid=$(cat "$dir/n$i/pid") && kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  network_down
  rm -rf "$dir"
}

kill_node() {
  local pid
  [ -f "$dir/n$1/pid" ] || die "node $1 has no pid file"
  pid=$(cat "$dir/n$1/pid")
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) for i in "${nodes[@]}"; do running "$i" || exit 1; done ;;
  url) urls ;;
  management) echo "http://guest:guest@$(node_host 1):$(($(amqp_port 1) + 10000))" ;;
  cut) [ -n "$netns" ] || die "cut needs RABBITMQ_CLUSTER_NETNS"; ip link set "$(host_veth "${2:?node number}")" down ;;
  heal) [ -n "$netns" ] || die "heal needs RABBITMQ_CLUSTER_NETNS"; ip link set "$(host_veth "${2:?node number}")" up ;;
  ctl) shift; i=${1:?node number}; shift; ctl "$i" "$@" ;;
  queues) shift; i=${1:?node number}; shift; on_node "$i" "$bin/rabbitmq-queues" -n "$(node_name "$i")" "$@" ;;
  kill) kill_node "${2:?node number}" ;;
  revive) start_node "${2:?node number}" ;;
  rebalance) on_node 1 "$bin/rabbitmq-queues" -n "$(node_name 1)" rebalance quorum >/dev/null ;;
  *) usage ;;
esac
