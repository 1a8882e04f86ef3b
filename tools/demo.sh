#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, then run bfm end to end on
# scans it synthesises itself: test-fire records and crime-scene items are ingested into a
# store, the overnight batch searches everything, and the candidate hits and linked cases print.
# Output goes to ./demo (override with BFM_DEMO_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
bfm=$PWD/build/bfm
out=${BFM_DEMO_DIR:-$PWD/demo}
rm -rf "$out" && mkdir -p "$out"
set -x
"$bfm" synth --out "$out/scans" --kind both --firearms 4 --firings 3 --unknown 1 --seed 2026
"$bfm" init "$out/store.h5"
"$bfm" ingest "$out/store.h5" "$out/scans/manifest.csv"
"$bfm" batch "$out/store.h5"
"$bfm" hits "$out/store.h5"
"$bfm" links "$out/store.h5" --dot "$out/links.dot"
"$bfm" verify "$out/store.h5"
"$bfm" info "$out/store.h5"
set +x
# The web review screen: a user for it, then the command that serves it (not started here, so
# the demo never blocks; a terminal with BFM_DEMO_SERVE=1 starts it).
printf 'demo-examiner\n' | "$bfm" user add "$out/store.h5.users" examiner --role examiner >/dev/null
echo "web review screen: $bfm serve $out/store.h5   then open http://127.0.0.1:8080/ (user examiner, password demo-examiner)"
if [ "${BFM_DEMO_SERVE:-0}" = 1 ] && [ -t 1 ] && [ "${CI:-}" != true ]; then
  exec "$bfm" serve "$out/store.h5"
fi
