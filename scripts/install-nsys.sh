#!/usr/bin/env bash
# Install the Nsight Systems CLI from Debian (bookworm contrib/non-free) when nsys is missing.
# Needs root and apt; elsewhere it says what to do and leaves the machine alone.
set -euo pipefail
if command -v nsys >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "nsys not found and cannot install it here (needs root and apt-get);" \
         "install Nsight Systems from NVIDIA to use --collector nsys" >&2
    exit 0
fi
. /etc/os-release
list=/etc/apt/sources.list.d/nnr-profile-nonfree.list
if ! grep -rqs "contrib non-free" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    echo "deb [signed-by=$keyring] http://deb.debian.org/debian ${VERSION_CODENAME} main contrib non-free" > "$list"
    echo "deb [signed-by=$keyring] http://deb.debian.org/debian ${VERSION_CODENAME}-updates main contrib non-free" >> "$list"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nsight-systems >/dev/null
nsys --version
