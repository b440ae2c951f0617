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
# The environment is rebuilt whenever the lock or pyproject.toml changed (by content, not
# by file time, which a fresh clone does not keep) or something changed the venv behind
# our back (doctor and tests/test_lock.py compare the venv with the lock).
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
stamp=.venv/.avsep-installed
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    uv_pin="$(grep -E '^uv==' requirements.lock | cut -d' ' -f1)"
    .venv/bin/python -m pip install -q "$uv_pin"
    # sync: install the locked versions and remove whatever the lock does not list.
    .venv/bin/uv pip sync -q --python .venv/bin/python requirements.lock
    .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
    echo "$want" > "$stamp"
fi
.venv/bin/avsep doctor --quiet
