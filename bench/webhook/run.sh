#!/usr/bin/env bash
# Webhook end to end: `vigil run` and tools/loadgen on the same machine, 400-event EventList
# batches over 4 keep-alive connections, the first 200,000 events of the gen-audit file (seed 1),
# at 1 and 2 workers: as fast as accepted, then at a fixed 100,000 events/s for the latency.
# Checks the server processed exactly what loadgen saw accepted.
# Usage: bench/webhook/run.sh (Release build in build/, after bench/replay/run.sh made the data)
set -euo pipefail
cd "$(dirname "$0")/../.."
vigil=build/tools/vigil
loadgen=build/tools/loadgen
data=build/bench-data/gen-1000000.jsonl
[ -s "$data" ] || python3 tools/gen-audit --events 1000000 --seed 1 -o "$data" --summary build/bench-data/gen-1000000.summary.json
head -200000 "$data" > build/bench-data/webhook-200k.jsonl
for w in 1 2; do
  for rate in 0 100000; do
    log=$(mktemp)
    "$vigil" run --listen 127.0.0.1:0 --api-listen off --metrics-listen off --workers "$w" -o json >/dev/null 2>"$log" &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.05; done
    port=$(grep -o '127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2)
    echo "== workers $w, rate $([ "$rate" = 0 ] && echo 'as fast as accepted' || echo "$rate events/s")"
    out=$("$loadgen" --port "$port" --file build/bench-data/webhook-200k.jsonl --connections 4 --rate "$rate")
    echo "$out"
    kill -TERM "$pid"; wait "$pid"
    accepted=$(sed -n 's/^accepted \([0-9]*\) events.*/\1/p' <<<"$out")
    processed=$(sed -n 's/.*stopped: \([0-9]*\) events processed.*/\1/p' "$log")
    echo "server processed $processed events"
    [ "$accepted" = "$processed" ] || { echo "LOSS: accepted $accepted, processed $processed" >&2; exit 1; }
    rm -f "$log"
  done
done
