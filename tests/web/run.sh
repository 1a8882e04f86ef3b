#!/usr/bin/env bash
# The browser test of bfm serve: builds a small synthetic store, starts `bfm serve` on a free
# loopback port and drives Debian's Chromium through it (e2e.js, playwright-core).
# usage: tests/web/run.sh BFM_BINARY [WORK_DIR]
# Without node or Chromium it skips, except under CI=true where that is a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bfm=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=${2:-$(mktemp -d)}
chromium=${CHROMIUM:-/usr/bin/chromium}
missing=""
command -v node >/dev/null || missing="node"
[ -x "$chromium" ] || missing="$missing chromium ($chromium)"
[ -d "$here/node_modules/playwright-core" ] || missing="$missing playwright-core (tools/deps.sh runs npm ci in tests/web)"
if [ -n "$missing" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "browser test: missing $missing (CI=true: this is a failure)" >&2
    exit 1
  fi
  echo "browser test: skipped, missing $missing"
  exit 0
fi
rm -rf "$work" && mkdir -p "$work/shots"
"$bfm" synth --out "$work/scans" --kind cartridge --firearms 2 --firings 2 --seed 13 >/dev/null
"$bfm" init "$work/store.h5" >/dev/null
"$bfm" ingest --quiet "$work/store.h5" "$work/scans/manifest.csv" >/dev/null
"$bfm" batch --quiet "$work/store.h5" >/dev/null
printf 'e2e-examiner-pw\n' | "$bfm" user add "$work/users" examiner1 --role examiner >/dev/null
"$bfm" serve "$work/store.h5" --users "$work/users" --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" || true)
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "bfm serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
BFM_URL=$url BFM_EXE=$bfm BFM_STORE=$work/store.h5 BFM_USER=examiner1 BFM_PASSWORD=e2e-examiner-pw \
  BFM_SHOTS=$work/shots CHROMIUM=$chromium node "$here/e2e.js"
