#!/usr/bin/env bash
# One command to run clerk-sync on this machine against the local PostgreSQL
# and RabbitMQ: builds the binaries, creates the database, runs migrations,
# declares the topology, starts the ingest and a worker, and prints how to
# send a test event. Ctrl-C stops everything.
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
export CLERK_SYNC__WORKER__LISTEN=${CLERK_SYNC__WORKER__LISTEN:-127.0.0.1:9090}

target/release/clerk-sync-worker migrate

target/release/clerk-sync-worker run > "$state/worker.log" 2>&1 &
worker=$!
target/release/clerk-sync-ingest > "$state/ingest.log" 2>&1 &
ingest=$!
trap 'kill -TERM $ingest $worker 2>/dev/null; wait $ingest $worker 2>/dev/null; echo "stopped"' EXIT INT TERM

# wait_ready URL PID LOG: until URL answers 200; show the log if PID dies.
wait_ready() {
  for _ in $(seq 1 150); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3"; exit 1; }
    sleep 0.1
  done
  echo "$1 did not become ready; see $3" >&2
  exit 1
}
wait_ready "http://$INGEST_LISTEN/readyz" $ingest "$state/ingest.log"
wait_ready "http://$CLERK_SYNC__WORKER__LISTEN/readyz" $worker "$state/worker.log"

# The hint never shows a secret: only where to read the one made here.
if [ "$(cat "$state/secret" 2>/dev/null)" = "$CLERK_WEBHOOK_SECRET" ]; then
  secret_hint="\$(cat $state/secret)"
else
  secret_hint="<your Clerk endpoint's whsec_ secret>"
fi
cat <<HINT

clerk-sync is up.
  ingest   http://$INGEST_LISTEN/api/webhooks/clerk   (logs: $state/ingest.log)
           http://$INGEST_LISTEN/readyz   http://$INGEST_LISTEN/metrics
  worker   http://$CLERK_SYNC__WORKER__LISTEN/readyz   http://$CLERK_SYNC__WORKER__LISTEN/metrics   (logs: $state/worker.log)
  database psql -h 127.0.0.1 -U postgres clerk_sync

Send signed test events from another terminal, in $PWD:
  export CLERK_WEBHOOK_SECRET=$secret_hint INGEST_LISTEN=$INGEST_LISTEN
  target/release/clerk-sync-worker send user.created --email ada@example.com --first-name Ada
  target/release/clerk-sync-worker send user.updated --user USER_ID --email ada@example.com --first-name Ada --role instructor
  target/release/clerk-sync-worker send user.deleted --user USER_ID
  target/release/clerk-sync-worker send --scenario out-of-order   (or duplicates, delete-then-update)
  target/release/clerk-sync-worker send --file PAYLOAD.json      (a body exactly as the file holds it)
(USER_ID: the user the first command printed. deploy/local/send-test-event.sh ARGS... does the export for you.)
Then look at the rows and the event log:
  psql -h 127.0.0.1 -U postgres clerk_sync -c 'SELECT "clerkId", "email", "firstName" FROM "Student"'
  psql -h 127.0.0.1 -U postgres clerk_sync -c 'SELECT svix_id, event_type, clerk_user_id, outcome FROM clerk_sync.events ORDER BY recorded_at'

Ctrl-C stops it.
HINT
wait -n $ingest $worker
