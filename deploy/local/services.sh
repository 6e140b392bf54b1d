#!/usr/bin/env bash
# Start the local PostgreSQL and RabbitMQ if they are not running (Debian
# packages, as on the development machines and CI). Used by .ci/run and by
# deploy/local/up.sh. Idempotent.
set -euo pipefail

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL at 127.0.0.1:5432 did not start" >&2; exit 1; }

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
fi
timeout 120 rabbitmqctl -q await_startup || { echo "RabbitMQ at 127.0.0.1:5672 did not start" >&2; exit 1; }
# clerk-sync's topology needs no plugin: shards are chosen by the ingest
# (see docs/src/reference/queues.md).
