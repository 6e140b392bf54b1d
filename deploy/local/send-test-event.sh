#!/usr/bin/env bash
# Sign a Clerk payload as Svix does and POST it to a running ingest.
#   deploy/local/send-test-event.sh PAYLOAD.json [URL]
# The secret is CLERK_WEBHOOK_SECRET, else the one deploy/local/up.sh made.
set -euo pipefail
cd "$(dirname "$0")/../.."
payload=${1:?usage: send-test-event.sh PAYLOAD.json [URL]}
url=${2:-http://${INGEST_LISTEN:-127.0.0.1:8080}/api/webhooks/clerk}
secret=${CLERK_WEBHOOK_SECRET:-$(cat target/local/secret 2>/dev/null || true)}
[ -n "$secret" ] || { echo "set CLERK_WEBHOOK_SECRET or run deploy/local/up.sh first" >&2; exit 2; }

SECRET="$secret" python3 - "$payload" "$url" <<'PY'
import base64, hashlib, hmac, os, sys, time, uuid, urllib.request, urllib.error
path, url = sys.argv[1], sys.argv[2]
body = open(path, "rb").read()
key = base64.b64decode(os.environ["SECRET"].split()[0].split(",")[0].removeprefix("whsec_"))
msg_id, ts = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
req = urllib.request.Request(url, data=body, method="POST", headers={
    "svix-id": msg_id, "svix-timestamp": ts, "svix-signature": f"v1,{sig}",
    "content-type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode(), msg_id)
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(), msg_id); sys.exit(1)
PY
