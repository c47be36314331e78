#!/usr/bin/env bash
# Instructions per replayed event, by stage: a figure the host's speed does not move.
#
# Runs `vigil replay --workers 1 -o json` under callgrind on the first N1 and N2 events of a
# generated file (tools/gen-audit, seed 1) and divides the difference of the two counts by N2 - N1,
# so start-up (loading the rules, compiling hyperscan databases, dynamic linking) cancels out. The
# stages are callgrind's inclusive counts of the functions that do them, summed over all threads.
# Wall time on this project's VM swings by 3x between spells; these counts move by about 1%
# (thread scheduling changes how often the queues poll).
#
# Usage: bench/profile/run.sh [--events "N1 N2"] [--rules DIR] [--curve] [--decoders] [--json FILE]
#                             [--keep DIR]
#   --events  the two sizes (default "10000 40000")
#   --rules   a rules directory instead of the shipped rules (e.g. the hub's scenarios)
#   --curve   also count the whole process's instructions per event at 10, 100 and 1,000 rules:
#             the shipped rules plus matcher_bench's synthetic ones (`matcher_bench --write-rules`),
#             and the 1,000 / 10 ratio (issue 6's goal: at most 2x); about 3 minutes more
#   --decoders  also count, per event of the first N1 events, three ways of parsing them in
#             decode_bench: simdjson's DOM parse alone (parse_many), vigil's reader (DOM parse,
#             framing, decode_event), and simdjson On Demand reading the decoded fields only (a
#             design vigil does not have); each is the difference of 3 and 2 one-iteration
#             repetitions, so loading the input cancels out; about a minute more
#   --json    also write the figures as JSON to FILE
#   --keep    keep the callgrind outputs in DIR (callgrind_annotate them for the whole profile)
# Needs valgrind (tools/setup-deps.sh installs it) and a Release build in build/ (with
# build/bench/matcher_bench for --curve). Under valgrind, simdjson runs its AVX2 ("haswell")
# kernel whatever the CPU has.
set -euo pipefail
cd "$(dirname "$0")/../.."
n1=10000
n2=40000
rules=()
json=""
keep=""
curve=0
decoders=0
while [ $# -gt 0 ]; do
  case "$1" in
    --events) read -r n1 n2 <<<"$2"; shift 2 ;;
    --rules) rules=(--rules "$2"); shift 2 ;;
    --curve) curve=1; shift ;;
    --json) json="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    --decoders) decoders=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "bench/profile/run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$n1" =~ ^[0-9]+$ && "$n2" =~ ^[0-9]+$ ]] || [ "$n1" -ge "$n2" ]; then
  echo "bench/profile/run.sh: --events takes two sizes, the first smaller: \"10000 40000\"" >&2
  exit 2
fi
vigil=build/tools/vigil
[ -x "$vigil" ] || { echo "build first: cmake -B build -G Ninja && cmake --build build -j2" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is missing: tools/setup-deps.sh installs it" >&2; exit 2; }

mkdir -p build/bench-data
data="build/bench-data/gen-$n2.jsonl"
[ -s "$data" ] || python3 tools/gen-audit --events "$n2" --seed 1 -o "$data"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -n "$n1" "$data" > "$work/small.jsonl"

profile() { # profile NAME FILE EVENTS [RULES ARGS...]
  local name="$1" file="$2" events="$3" err decoded
  shift 3
  err=$(valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" \
    "$vigil" replay --workers 1 -o json "$@" "$file" 2>&1 >/dev/null)
  decoded=$(sed -n 's/^[0-9]* events read, \([0-9]*\) decoded.*/\1/p' <<<"$err")
  if [ "$decoded" != "$events" ]; then
    echo "profile did not do the expected work: decoded=$decoded/$events" >&2
    echo "$err" | tail -20 >&2
    exit 1
  fi
  alerts=$(sed -n 's/^\([0-9]*\) alerts .*/\1/p' <<<"$err")
  callgrind_annotate --inclusive=yes --threshold=100 "$work/$name.out" > "$work/$name.txt"
  echo "$alerts" > "$work/$name.alerts"
}
profile small "$work/small.jsonl" "$n1" "${rules[@]+"${rules[@]}"}"
profile large "$data" "$n2" "${rules[@]+"${rules[@]}"}"
curve_sizes=""
if [ "$curve" = 1 ]; then
  [ -x build/bench/matcher_bench ] || { echo "--curve needs build/bench/matcher_bench" >&2; exit 2; }
  mkdir -p "$work/rules"
  build/bench/matcher_bench --write-rules "$work/rules"
  for n in 10 100 1000; do
    profile "small-$n" "$work/small.jsonl" "$n1" --rules rules/crowdsecurity --rules "$work/rules/synthetic-$n.yaml"
    profile "large-$n" "$data" "$n2" --rules rules/crowdsecurity --rules "$work/rules/synthetic-$n.yaml"
  done
  curve_sizes="10 100 1000"
fi
decoder_counts=""
if [ "$decoders" = 1 ]; then
  [ -x build/bench/decode_bench ] || { echo "--decoders needs build/bench/decode_bench" >&2; exit 2; }
  for b in BM_simdjson_parse_many BM_vigil_framed BM_ondemand_fields_skip_objects; do
    counts=""
    for reps in 2 3; do
      out="$work/dec-$b-$reps.out"
      ran=$(VIGIL_BENCH_PERFSPEC="$work/small.jsonl" valgrind --tool=callgrind --callgrind-out-file="$out" \
        build/bench/decode_bench --benchmark_filter="^$b/0\$" --benchmark_min_time=0.000001 \
        --benchmark_repetitions="$reps" 2>/dev/null | grep -c "^$b/0 .* 1 bytes_per_second" || true)
      if [ "$ran" != "$reps" ]; then
        echo "decode_bench $b did not run $reps one-iteration repetitions ($ran)" >&2
        exit 1
      fi
      counts="$counts $(callgrind_annotate "$out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)"
    done
    decoder_counts="$decoder_counts $b$counts"
  done
fi
[ -z "$keep" ] || { mkdir -p "$keep" && cp "$work"/*.out "$keep"/; }

N1="$n1" N2="$n2" WORK="$work" JSON="$json" CURVE="$curve_sizes" DECODERS="$decoder_counts" python3 - <<'PY'
import json, os, re, sys

n1, n2, work = int(os.environ["N1"]), int(os.environ["N2"]), os.environ["WORK"]

# Each stage is the sum of the inclusive counts of the functions whose names contain one of
# these (they do not call each other, so nothing is counted twice within a stage).
stages = [
    ("simdjson stage 1 (structural index)", ["dom_parser_implementation::stage1("]),
    ("simdjson stage 2 (DOM tape)", ["dom_parser_implementation::stage2_next(", "dom_parser_implementation::stage2("]),
    ("decode (audit_event fields)", ["vigil::engine::decode_event("]),
    ("meta (CrowdSec's evt.Meta)", ["vigil::engine::build_meta("]),
    ("matching (hyperscan + filters)", ["vigil::rules::matcher::match("]),
    # pour() calls pour_trigger(); an overflow builds its alert here, on the worker.
    ("buckets (pour, overflow into an alert, expiry)", ["vigil::engine::bucket_set::pour(",
                                                         "vigil::engine::bucket_set::advance("]),
    ("alerts: emitter thread", ["vigil::pipeline::pipeline::impl::run_emitter()"]),
    ("reading and framing: reader thread", ["vigil::io::replay_file("]),
]
worker_fn = "vigil::pipeline::worker::run()"
pool_fn = "vigil::pipeline::chunk_pool::get("
line = re.compile(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$")


def counts(name):
    total, by = None, {}
    with open(os.path.join(work, name + ".txt")) as f:
        for l in f:
            m = line.match(l)
            if not m:
                continue
            n, what = int(m.group(1).replace(",", "")), m.group(2)
            if what.startswith("PROGRAM TOTALS"):
                total = n
                continue
            # callgrind_annotate lists a function once; the first (largest) entry wins.
            by.setdefault(what, n)
    if total is None:
        sys.exit(f"no totals in the {name} profile")
    return total, by


def pick(by, needles):
    return sum(n for what, n in by.items() if any(s in what for s in needles))


def breakdown(small, large):
    """Marginal instructions per event of the pair of runs: (total, [(stage, value)], start-up)."""
    (t1, b1), (t2, b2) = counts(small), counts(large)
    per = lambda a, b: (b - a) / (n2 - n1)
    total = per(t1, t2)
    rows, inside_worker = [], 0.0
    for label, needles in stages:
        v = per(pick(b1, needles), pick(b2, needles))
        rows.append((label, v))
        if not label.startswith(("alerts", "reading")):
            inside_worker += v
    worker = per(pick(b1, [worker_fn]), pick(b2, [worker_fn]))
    rows.insert(6, ("worker, everything else (queues, counters, payloads)", worker - inside_worker))
    rows.append(("rest of the process", total - worker - rows[-2][1] - rows[-1][1]))
    # New input buffers are zeroed as the reader's chunk pool grows. The pool stops growing once
    # it covers the worker's queue (a few chunks of 1 MiB), but
    # how many of those fall between the two runs depends on thread scheduling (0 to 3), which
    # moved the reader's row by up to 300 instructions per event from run to run.
    pool = per(pick(b1, [pool_fn]), pick(b2, [pool_fn]))
    return total, rows, t1 - n1 * total, pool


def alerts_of(name):
    return int(open(os.path.join(work, name + ".alerts")).read() or 0)


total, rows, startup, pool = breakdown("small", "large")
alerts = [alerts_of("small"), alerts_of("large")]
print(f"{'stage':<56} {'instructions/event':>18} {'share':>7}")
for label, v in rows:
    print(f"{label:<56} {v:>18,.0f} {100 * v / total:>6.1f}%")
print(f"{'total, per replayed event':<56} {total:>18,.0f} {100.0:>6.1f}%")
print(f"{'  of which the buffer pool growing (reader; stops early)':<56} {pool:>18,.0f}")
print(f"{'total without the pool growing (steady state)':<56} {total - pool:>18,.0f}")
print(f"(marginal cost between {n1:,} and {n2:,} events, 1 worker; start-up: {startup:,.0f} instructions;"
      f" alerts {alerts[0]:,} / {alerts[1]:,})")
doc = {"events": [n1, n2], "instructions_per_event": round(total, 1),
       "pool_growth": round(pool, 1), "instructions_per_event_steady": round(total - pool, 1),
       "stages": {label: round(v, 1) for label, v in rows},
       "startup_instructions": round(startup), "alerts": alerts}
if os.environ["CURVE"]:
    # Every stage as the rule count grows: the shipped rules plus matcher_bench's synthetic ones.
    sizes = [int(n) for n in os.environ["CURVE"].split()]
    curve = []
    for n in sizes:
        t, r, st, _ = breakdown(f"small-{n}", f"large-{n}")
        curve.append({"rules": n, "instructions_per_event": round(t, 1),
                      "stages": {label: round(v, 1) for label, v in r},
                      "startup_instructions": round(st), "alerts": alerts_of(f"large-{n}")})
    print()
    print(f"{'rules: 7 shipped + synthetic':<56}" + "".join(f"{c['rules']:>12,}" for c in curve))
    for label, _ in rows:
        print(f"{label:<56}" + "".join(f"{c['stages'][label]:>12,.0f}" for c in curve))
    print(f"{'total, per replayed event':<56}" + "".join(f"{c['instructions_per_event']:>12,.0f}" for c in curve))
    print(f"{'alerts (of ' + format(n2, ',') + ' events)':<56}" + "".join(f"{c['alerts']:>12,}" for c in curve))
    print(f"{'start-up (instructions)':<56}" + "".join(f"{c['startup_instructions']:>12,.3g}" for c in curve))
    by = {c["rules"]: c for c in curve}
    match = "matching (hyperscan + filters)"
    doc["rule_curve"] = curve
    doc["ratio_1000_vs_10"] = round(by[1000]["instructions_per_event"] / by[10]["instructions_per_event"], 3)
    doc["matching_ratio_1000_vs_10"] = round(by[1000]["stages"][match] / by[10]["stages"][match], 3)
    print(f"at 1,000 rules an event costs {doc['ratio_1000_vs_10']:.2f}x the instructions it costs at 10"
          f" (goal <= 2x); the matching alone {doc['matching_ratio_1000_vs_10']:.2f}x")
if os.environ["DECODERS"]:
    # name reps2 reps3 triples: one repetition parses the first n1 events once.
    f = os.environ["DECODERS"].split()
    labels = {"BM_simdjson_parse_many": "simdjson DOM parse alone (parse_many)",
              "BM_vigil_framed": "vigil's reader: DOM parse, framing, decode_event",
              "BM_ondemand_fields_skip_objects": "simdjson On Demand, the decoded fields only"}
    decoders = {}
    print()
    print(f"{'parsing the first ' + format(n1, ',') + ' events (decode_bench)':<56} {'instructions/event':>18}")
    for i in range(0, len(f), 3):
        v = (int(f[i + 2]) - int(f[i + 1])) / n1
        decoders[labels[f[i]]] = round(v, 1)
        print(f"{labels[f[i]]:<56} {v:>18,.0f}")
    doc["decoders"] = decoders
if os.environ["JSON"]:
    with open(os.environ["JSON"], "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
PY
