#!/usr/bin/env bash
# Webhook end to end: `vigil run` and tools/loadgen on the same machine, 400-event EventList
# batches over 4 keep-alive connections, all 1,000,000 events of the gen-audit file (seed 1),
# at 1 and 2 workers: as fast as accepted, then at a fixed 100,000 events/s for the latency.
# Checks the server processed exactly what loadgen saw accepted, and that every event was accepted.
# Also prints vigil's CPU time while loadgen ran, by thread (the HTTP loop, which parses every
# body, the workers, the emitter), and the events it took per CPU-second.
# Usage: bench/webhook/run.sh [--events N] [--source M] [--workers "1 2"] [--json FILE] [--vigil BIN] [--no-metrics]
#   --events   events posted (default 1000000), the first N of build/bench-data/gen-M.jsonl
#   --source   the gen-audit file to take them from (default 1000000, as bench/replay/run.sh makes)
#   --json     also write every run as a JSON array to FILE (the output below is printed either way)
#   --vigil    another vigil binary (e.g. an older commit's build, to compare side by side)
#   --no-metrics  run vigil without /metrics (no server-counter check, nothing scraped)
# Release build in build/.
set -euo pipefail
cd "$(dirname "$0")/../.."
count=1000000
source_events=1000000
workers="1 2"
json=""
vigil_bin=""
metrics=1
while [ $# -gt 0 ]; do
  case "$1" in
    --events) count="$2"; shift 2 ;;
    --source) source_events="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    --vigil) vigil_bin="$2"; shift 2 ;;
    --no-metrics) metrics=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
vigil=${vigil_bin:-build/tools/vigil}
loadgen=build/tools/loadgen
[ -x "$vigil" ] && [ -x "$loadgen" ] || { echo "build first: cmake --build build -j2 --target vigil loadgen" >&2; exit 2; }
mkdir -p build/bench-data
data=build/bench-data/gen-$source_events.jsonl
[ -s "$data" ] || python3 tools/gen-audit --events "$source_events" --seed 1 -o "$data" --summary "build/bench-data/gen-$source_events.summary.json"
posted=build/bench-data/webhook-$count.jsonl
head -"$count" "$data" > "$posted"
lines=$(wc -l < "$posted")
rows=()
tick=$(getconf CLK_TCK)
# CPU ticks (user + system) of vigil's threads: "loop workers emitter other". The HTTP loop is
# the main thread; workers and emitter are named by the pipeline; the rest (notifier, libuv's
# pool) is "other".
thread_ticks() {
  local pid="$1" loop=0 workers=0 emitter=0 other=0 t comm stat f n
  for t in /proc/"$pid"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    stat=$(cat "$t/stat" 2>/dev/null) || continue
    read -r -a f <<<"${stat##*) }" # fields from the state on: utime and stime are 11 and 12
    n=$((f[11] + f[12]))
    if [ "${t##*/}" = "$pid" ]; then loop=$((loop + n))
    elif [[ "$comm" == vigil-worker-* ]]; then workers=$((workers + n))
    elif [ "$comm" = vigil-emitter ]; then emitter=$((emitter + n))
    else other=$((other + n)); fi
  done
  echo "$loop $workers $emitter $other"
}
for w in $workers; do
  for rate in 0 100000; do
    log=$(mktemp)
    db=$(mktemp -u --suffix .db)
    printf 'store:\n  path: %s\n' "$db" > "$log.yaml"
    if [ "$metrics" = 1 ]; then mlisten=127.0.0.1:0; ready="vigil metrics on"; else mlisten=off; ready="listening on"; fi
    "$vigil" run -c "$log.yaml" --listen 127.0.0.1:0 --api-listen off --metrics-listen "$mlisten" --workers "$w" -o json >/dev/null 2>"$log" &
    pid=$!
    for _ in $(seq 100); do grep -q "$ready" "$log" && break; sleep 0.05; done
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://')
    check=()
    if [ "$metrics" = 1 ]; then
      # loadgen checks the server's own accepted count against its own (exit 3 if they differ)
      check=(--metrics-port "$(grep -o 'vigil metrics on http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://')")
    fi
    echo "== workers $w, rate $([ "$rate" = 0 ] && echo 'as fast as accepted' || echo "$rate events/s")"
    read -r l0 w0 e0 o0 < <(thread_ticks "$pid")
    out=$("$loadgen" --port "$port" "${check[@]}" --file "$posted" --connections 4 --rate "$rate") && lg_status=0 || lg_status=$?
    read -r l1 w1 e1 o1 < <(thread_ticks "$pid")
    echo "$out"
    kill -TERM "$pid"; wait "$pid"
    [ "$lg_status" = 0 ] || { echo "loadgen exit status $lg_status (1: not every event taken, 3: the server's count differs)" >&2; exit 1; }
    accepted=$(sed -n 's/^accepted \([0-9]*\) events.*/\1/p' <<<"$out")
    processed=$(sed -n 's/.*stopped: \([0-9]*\) events processed.*/\1/p' "$log")
    alerts=$(sed -n 's/.*stopped: [0-9]* events processed, \([0-9]*\) alert.*/\1/p' "$log")
    echo "server processed $processed events"
    [ "$accepted" = "$processed" ] || { echo "LOSS: accepted $accepted, processed $processed" >&2; exit 1; }
    [ "$accepted" = "$lines" ] || { echo "NOT ALL ACCEPTED: posted $lines, accepted $accepted" >&2; exit 1; }
    rm -f "$log" "$log.yaml" "$db" "$db-wal" "$db-shm"
    eps=$(sed -n 's/^accepted [0-9]* events in [0-9.]* s: \([0-9]*\) events\/s.*/\1/p' <<<"$out")
    secs=$(sed -n 's/^accepted [0-9]* events in \([0-9.]*\) s.*/\1/p' <<<"$out")
    read -r p50 p90 p99 pmax < <(sed -n 's/^latency ms: p50 \([0-9.]*\)  p90 \([0-9.]*\)  p99 \([0-9.]*\)  max \([0-9.]*\).*/\1 \2 \3 \4/p' <<<"$out")
    answers=$(sed -n 's/^answers: *//p' <<<"$out")
    # vigil's CPU while loadgen ran, by thread, and the events it took per CPU-second
    read -r cpu cpu_loop cpu_workers cpu_emitter epc < <(python3 -c "
t = $tick
loop, workers, emitter, other = ($l1 - $l0) / t, ($w1 - $w0) / t, ($e1 - $e0) / t, ($o1 - $o0) / t
cpu = loop + workers + emitter + other
print(round(cpu, 2), round(loop, 2), round(workers, 2), round(emitter, 2), round($accepted / cpu) if cpu > 0 else 0)")
    echo "vigil CPU while loadgen ran: $cpu s (HTTP loop $cpu_loop, workers $cpu_workers, emitter $cpu_emitter): $epc events per CPU-second"
    rows+=("{\"workers\": $w, \"rate\": $rate, \"events\": $lines, \"accepted\": $accepted, \"processed\": $processed, \"alerts\": ${alerts:-null}, \"seconds\": $secs, \"events_per_s\": $eps, \"p50_ms\": $p50, \"p90_ms\": $p90, \"p99_ms\": $p99, \"max_ms\": $pmax, \"answers\": \"$answers\", \"cpu_seconds\": $cpu, \"cpu_loop_seconds\": $cpu_loop, \"cpu_workers_seconds\": $cpu_workers, \"cpu_emitter_seconds\": $cpu_emitter, \"events_per_cpu_s\": $epc}")
  done
done
if [ -n "$json" ]; then
  { echo "["; for i in "${!rows[@]}"; do printf '  %s%s\n' "${rows[$i]}" "$([ "$i" -lt $((${#rows[@]} - 1)) ] && echo ,)"; done; echo "]"; } > "$json"
fi
