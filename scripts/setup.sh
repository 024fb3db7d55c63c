#!/usr/bin/env bash
# Set up gradnap on a fresh machine: system packages (apt-get, when root), then a virtual
# environment with the pinned Python dependencies and gradnap itself (editable).
# Called by `make setup`, `make demo` and `make test`; safe to run again.
set -euo pipefail
venv="${1:-.venv}"
system_packages=(espeak-ng libespeak-ng1 festival festlex-cmu festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite wordnet-base chromium chromium-driver pocketsphinx-testdata)

missing=()
for pkg in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    else
        echo "setup: WARNING: missing system packages: ${missing[*]}" >&2
        echo "setup: install them as root with: apt-get install -y ${missing[*]}" >&2
        echo "setup: (speech synthesis needs the voices, the report test Chromium; tests that need them are skipped)" >&2
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating virtual environment $venv"
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements.lock
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "setup: done ($("$venv/bin/python" -c 'import gradnap; print("gradnap", gradnap.__version__)'))"
