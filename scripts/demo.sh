#!/usr/bin/env bash
# The main job on the embedded stand-in data: installs what it needs, then generates the
# Solos/URMP stand-in, prepares shards, trains the small CPU demo model (<= 15 minutes),
# evaluates it on held-out stand-in URMP duets and renders a localization heatmap video.
# Extra arguments go to `avsep demo` (see `.venv/bin/avsep demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/avsep demo "$@"
