#!/usr/bin/env bash
# Installs every build and test dependency of vigil from Debian 12 packages.
# Idempotent: packages already present are left alone; safe to run twice.
# Nothing else is downloaded, now or at build time.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache git
  # core libraries
  libsimdjson-dev libconcurrentqueue-dev libuv1-dev libhyperscan-dev libyaml-cpp-dev
  libhttp-parser-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev libcli11-dev libre2-dev
  # tests, benchmarks, fuzzing
  libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev
  # instruction counts per event (bench/profile/run.sh)
  valgrind
  # test helpers (loopback TLS material, HTTP client)
  openssl curl python3
  # time zones of notification templates (dateInZone "..." t "Europe/Paris")
  tzdata
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
