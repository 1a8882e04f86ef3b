#!/usr/bin/env bash
# Installs the Debian packages bfm builds and runs with, when any is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libfftw3-dev libhdf5-dev hdf5-tools libzip-dev libxml2-dev
      libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev graphviz zip unzip
      libopenmpi-dev openmpi-bin)
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
