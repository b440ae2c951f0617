#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian/Ubuntu machine: system packages (FluidSynth, General MIDI
# soundfonts, ffmpeg) and a virtual environment in .venv holding exactly requirements.lock
# (every dependency at its locked version, nothing else) plus avsep itself in editable mode.
# Ends with `avsep doctor`, which exercises every native library on a tiny generated input.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v fluidsynth >/dev/null 2>&1 || need_apt+=(fluidsynth)
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need_apt+=(fluid-soundfont-gm)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || need_apt+=(timgm6mb-soundfont)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# Every run brings the venv back to exactly the lock (uv pip sync installs the locked
# versions and removes whatever the lock does not list; it takes a second when nothing
# changed), so a package upgraded or added by hand is undone here.
uv_pin="$(grep -E '^uv==' requirements.lock | cut -d' ' -f1)"
if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "${uv_pin#uv==}" ]; then
    .venv/bin/python -m pip install -q "$uv_pin"
fi
echo "-e ." | .venv/bin/uv pip sync -q --python .venv/bin/python requirements.lock -
.venv/bin/avsep doctor --quiet
