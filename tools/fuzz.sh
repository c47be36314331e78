#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 and runs each for a time budget.
# Usage: tools/fuzz.sh [seconds-per-target] (default 60). Crashes are written to build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
CXX=clang++-14 cmake -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_FUZZ=ON \
  -DVIGIL_BENCH=OFF -DBUILD_TESTING=OFF >/dev/null
targets=(decoder_fuzz)
if [ -f tests/fuzz/expr_fuzz.cpp ] && [ -f rules/expr/CMakeLists.txt ]; then targets+=(expr_fuzz); fi
if [ -f tests/fuzz/template_fuzz.cpp ]; then targets+=(template_fuzz); fi
cmake --build build-fuzz -j2 --target "${targets[@]}"
for t in "${targets[@]}"; do
  name="${t%_fuzz}"
  corpus="build-fuzz/corpus-$name"
  mkdir -p "$corpus"
  seeds=()
  [ -d "tests/fuzz/corpus/$name" ] && seeds+=("tests/fuzz/corpus/$name")
  echo "fuzz: $t for ${secs}s"
  (cd build-fuzz && "./tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 "../$corpus" "${seeds[@]/#/../}" 2>&1 | tail -n 12)
done
