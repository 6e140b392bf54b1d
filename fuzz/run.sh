#!/usr/bin/env bash
# Fuzz the event parser and decide() for SECONDS (default 60), seeded with
# the Clerk payloads of fixtures/clerk/. Exits non-zero on a crash, whose
# input is left in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
corpus=corpus/parse_and_decide
mkdir -p "$corpus"
for seed in ../fixtures/clerk/*.json ../fixtures/clerk/*/*.json; do
  [ -f "$seed" ] && cp "$seed" "$corpus/seed-$(basename "$(dirname "$seed")")-$(basename "$seed")"
done
RUSTC_BOOTSTRAP=1 cargo fuzz run parse_and_decide "$corpus" -- -max_total_time="$seconds" -print_final_stats=1
