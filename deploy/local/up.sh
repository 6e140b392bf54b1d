#!/usr/bin/env bash
# One command to run clerk-sync on this machine against the local PostgreSQL
# and RabbitMQ: builds the binaries, declares the topology, starts the
# ingest, and prints how to send a test event. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."

state=target/local
mkdir -p "$state"
bash deploy/local/services.sh

echo "building (release; the first build takes a few minutes)"
cargo build --release --bins --quiet

# A development signing secret, made once and kept in target/local/secret,
# unless you set CLERK_WEBHOOK_SECRET to your Clerk endpoint's secret.
if [ -z "${CLERK_WEBHOOK_SECRET:-}" ]; then
  [ -s "$state/secret" ] || echo "whsec_$(head -c 24 /dev/urandom | base64)" > "$state/secret"
  CLERK_WEBHOOK_SECRET=$(cat "$state/secret")
fi
export CLERK_WEBHOOK_SECRET
export INGEST_LISTEN=${INGEST_LISTEN:-127.0.0.1:8080}

target/release/clerk-sync-worker migrate

target/release/clerk-sync-ingest > "$state/ingest.log" 2>&1 &
ingest=$!
trap 'kill -TERM $ingest 2>/dev/null; wait $ingest 2>/dev/null; echo "stopped"' EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fs "http://$INGEST_LISTEN/readyz" >/dev/null 2>&1 && break
  kill -0 $ingest 2>/dev/null || { cat "$state/ingest.log"; exit 1; }
  sleep 0.1
done
curl -fs "http://$INGEST_LISTEN/readyz" >/dev/null || { cat "$state/ingest.log"; exit 1; }

cat <<HINT

clerk-sync is up.
  ingest   http://$INGEST_LISTEN/api/webhooks/clerk   (logs: $state/ingest.log)
  health   http://$INGEST_LISTEN/readyz   metrics: http://$INGEST_LISTEN/metrics
  RabbitMQ queues clerk_sync.shard.0-7:  rabbitmqctl list_queues name messages

Send a signed test event (in another terminal):
  deploy/local/send-test-event.sh ../shared/fixtures/user.created.json

Ctrl-C stops it.
HINT
wait $ingest
