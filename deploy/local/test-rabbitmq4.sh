#!/usr/bin/env bash
# Run clerk-sync's broker-facing tests against RabbitMQ 4.0 (Debian 13's
# package), beside the machine's own RabbitMQ 3.10 that the rest of the
# tests use. CI runs it after the README's test command; run it before a
# release too.
#
#   deploy/local/test-rabbitmq4.sh            # start the node (installing it
#                                             # the first time), test, stop it
#   deploy/local/test-rabbitmq4.sh --keep     # leave the node running
#
# The node comes from deploy/local/rabbitmq4.sh (its own node name, ports
# and epmd; the local node is never touched). The tests reach it through
# CLERK_SYNC_TEST_AMQP_URL and run its rabbitmqctl through
# CLERK_SYNC_TEST_RABBITMQCTL (clerk-sync-testkit's broker module).
set -euo pipefail
cd "$(dirname "$0")/../.."

keep=false
if [ "${1:-}" = "--keep" ]; then
  keep=true
  shift
fi
node=deploy/local/rabbitmq4.sh
bash "$node" start
$keep || trap 'bash "$node" stop' EXIT
CLERK_SYNC_TEST_AMQP_URL=$(bash "$node" url)
CLERK_SYNC_TEST_RABBITMQCTL="$PWD/$node ctl"
export CLERK_SYNC_TEST_AMQP_URL CLERK_SYNC_TEST_RABBITMQCTL
echo "broker-facing tests against $CLERK_SYNC_TEST_AMQP_URL"
cargo test -p clerk-sync-ingest --test api "$@"
# The worker's broker-facing modules of its one test binary.
cargo test -p clerk-sync-worker --test it "$@" -- \
  dead_letter_reads:: dlq:: failures:: status:: migrate:: convergence:: \
  workers_per_host:: unstorable::
