#!/usr/bin/env bash
# Opt-in: the MBROLA (us1, us2, us3) and SVOX pico voices for `gradnap synth --non-free`.
# They come from Debian's contrib and non-free components, and their licences forbid use
# in a sold product: gradnap's default corpus and everything in this repository use
# Debian `main` and PyPI voices only. Run as root; it adds contrib and non-free to the
# apt sources (deb822 file /etc/apt/sources.list.d/debian.sources) and installs the voices.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "run as root: it edits the apt sources and installs packages" >&2
    exit 1
fi
sources=/etc/apt/sources.list.d/debian.sources
if [ -f "$sources" ] && ! grep -q "non-free" "$sources"; then
    cp "$sources" "$sources.before-gradnap"
    sed -i 's/^Components: main$/Components: main contrib non-free/' "$sources"
    echo "enabled contrib and non-free in $sources (backup: $sources.before-gradnap)"
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q mbrola mbrola-us1 mbrola-us2 mbrola-us3 \
    libttspico-utils
echo "non-free voices installed; use them with: gradnap synth --non-free --voices mbrola-us1,..."
