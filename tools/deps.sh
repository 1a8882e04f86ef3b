#!/usr/bin/env bash
# Installs the Debian packages bfm builds and runs with, when any is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libfftw3-dev libhdf5-dev hdf5-tools libzip-dev libxml2-dev
      libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev graphviz zip unzip
      libmicrohttpd-dev libsodium-dev libopenmpi-dev openmpi-bin)
pkgs+=(libpng-dev clang libclang-rt-dev) # mask PNGs decoded quietly; libFuzzer targets (fuzz/)
# bfm serve's browser test: Chromium and node (npm may come with a non-Debian node)
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The browser test of bfm serve: playwright-core (it downloads no browser) from the lock file.
web_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/web"
if command -v npm >/dev/null && [ ! -d "$web_tests/node_modules/playwright-core" ]; then
  (cd "$web_tests" && npm ci --no-audit --no-fund >/dev/null)
fi
