#!/usr/bin/env bash
# Replay throughput: the shipped rules (and the hub's own files, when ../shared is present) over a
# 1,000,000-event file from tools/gen-audit (seed 1), at 1 and 2 workers; events/s, peak RSS, and
# events per CPU-second (all threads, user and system time: the throughput per core), and events
# per CPU-second of the worker threads alone (what one worker's core keeps up with; the reading
# thread and the emitter run beside them).
# Usage: bench/replay/run.sh [events] [--workers "1 2 ..."] [--json FILE]
#   events     size of the generated file (default 1000000; cached in build/bench-data/)
#   --workers  worker counts for the shipped rules (default "1 2"); the hub's files run at 1 and 2
#   --json     also write every run as a JSON array to FILE (the table below is printed either way)
# Release build in build/. Checks that real work happened: every event decoded and the injected
# bursts alerted.
set -euo pipefail
cd "$(dirname "$0")/../.."
events=1000000
workers="1 2"
json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) events="$1"; shift ;;
  esac
done
vigil=build/tools/vigil
[ -x "$vigil" ] || { echo "build first: cmake -B build -G Ninja && cmake --build build -j2" >&2; exit 2; }
mkdir -p build/bench-data
data="build/bench-data/gen-$events.jsonl"
summary="build/bench-data/gen-$events.summary.json"
if [ ! -s "$data" ] || [ ! -s "$summary" ]; then
  echo "generating $events events -> $data" >&2
  python3 tools/gen-audit --events "$events" --seed 1 -o "$data" --summary "$summary"
fi
bursts=$(python3 -c "import json;print(len(json.load(open('$summary'))['bursts']))")
size=$(stat -c %s "$data")
hub=../shared/data/crowdsec-hub/scenarios/crowdsecurity
rows=()
printf "%-10s %-8s %12s %10s %10s %10s %14s %18s\n" rules workers events/s MB/s "RSS MB" alerts "events/CPU-s" "events/worker-CPU-s"
run() {
  local label="$1" workers="$2"; shift 2
  local err
  # From the page cache, not the disk: this host's proactive reclaim (bench/README.md) evicts
  # files left cold, and a replay read from disk measures the disk.
  cat "$data" >/dev/null
  err=$("$vigil" replay --workers "$workers" -o json "$@" "$data" 2>&1 >/dev/null)
  local read decoded eps rss alerts bf secs mbs
  read=$(sed -n 's/^\([0-9]*\) events read, \([0-9]*\) decoded.*/\1/p' <<<"$err")
  decoded=$(sed -n 's/^[0-9]* events read, \([0-9]*\) decoded.*/\1/p' <<<"$err")
  eps=$(sed -n 's/.* s: \([0-9]*\) events\/s.*/\1/p' <<<"$err")
  secs=$(sed -n 's/.* in \([0-9.]*\) s: .*/\1/p' <<<"$err")
  rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MB.*/\1/p' <<<"$err")
  cpu=$(sed -n 's/.*, CPU \([0-9.]*\) s (.*/\1/p' <<<"$err")
  epc=$(sed -n 's/.* (\([0-9]*\) events per CPU-second).*/\1/p' <<<"$err")
  wcpu=$(sed -n 's/^CPU by thread: workers \([0-9.]*\) s (.*/\1/p' <<<"$err")
  epw=$(sed -n 's/^CPU by thread: .* (\([0-9]*\) events per worker CPU-second).*/\1/p' <<<"$err")
  alerts=$(sed -n 's/^\([0-9]*\) alerts .*/\1/p' <<<"$err")
  bf=$(awk '/k8s-audit-api-server-bruteforce/ {print $2}' <<<"$err")
  if [ "$decoded" != "$events" ] || [ "$bf" != "$bursts" ]; then
    echo "benchmark did not do the expected work: decoded=$decoded/$events bruteforce=$bf/$bursts" >&2
    echo "$err" >&2
    exit 1
  fi
  mbs=$(python3 -c "print(round($size/1e6/$secs, 1))")
  printf "%-10s %-8s %12s %10.0f %10s %10s %14s %18s\n" "$label" "$workers" "$eps" "$mbs" "$rss" "$alerts" "$epc" "$epw"
  rows+=("{\"rules\": \"$label\", \"workers\": $workers, \"events\": $read, \"decoded\": $decoded, \"bytes\": $size, \"seconds\": $secs, \"events_per_s\": $eps, \"mb_per_s\": $mbs, \"peak_rss_mb\": $rss, \"cpu_seconds\": $cpu, \"events_per_cpu_s\": $epc, \"worker_cpu_seconds\": $wcpu, \"events_per_worker_cpu_s\": $epw, \"alerts\": $alerts, \"bruteforce_alerts\": $bf, \"injected_bursts\": $bursts}")
}
for w in $workers; do run shipped "$w"; done
if [ -d "$hub" ]; then
  for w in 1 2; do run hub "$w" --rules "$hub"; done
fi
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'); file: $events events, $((size / 1000000)) MB"
if [ -n "$json" ]; then
  { echo "["; for i in "${!rows[@]}"; do printf '  %s%s\n' "${rows[$i]}" "$([ "$i" -lt $((${#rows[@]} - 1)) ] && echo ,)"; done; echo "]"; } > "$json"
fi
