#!/usr/bin/env bash
# Static checks, run by scripts/test.sh before the tests: ruff (lint) on everything, and mypy
# (types) on the library and data preparation, which must report no finding at all (a finding
# that is wrong is silenced on its line with '# type: ignore[code]' and a comment saying why).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check avsep data_prep tests benchmarks
if ! output="$(.venv/bin/mypy avsep data_prep 2>&1)"; then
    echo "$output" >&2
    echo "mypy: findings above (fix them; silence a wrong one on its line with" \
         "'# type: ignore[code]' and say why)" >&2
    exit 1
fi
echo "ruff: clean; mypy: no findings"
