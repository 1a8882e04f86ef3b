#!/usr/bin/env bash
# Builds bfm twice (plain, and with AddressSanitizer + UBSan) and runs the whole ctest suite on each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j 1)
bash tests/web/run.sh build/bfm build/web-e2e
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBF_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && BF_QUICK=1 ctest --output-on-failure -j 1)
# A short libFuzzer run of each fuzz target (fuzz/) when clang is there (deps.sh installs it).
if command -v clang >/dev/null; then bash tools/fuzz.sh "${BF_FUZZ_SECONDS:-20}"; fi
