#!/usr/bin/env bash
# Static checks, run by scripts/test.sh before the tests: ruff (lint) on everything, and mypy
# (types) on the library and data preparation, which must report no finding at all (a finding
# that is wrong is silenced on its line with '# type: ignore[code]' and a comment saying why).
# The modules in STRICT_MODULES (the models and the configs) are also checked with
# mypy --strict: add a module's path there once it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
STRICT_MODULES=(
    avsep/models/*.py
    avsep/config.py
    avsep/run_config.py
    avsep/geometry.py
)
.venv/bin/ruff check avsep data_prep tests benchmarks
if ! output="$(.venv/bin/mypy avsep data_prep 2>&1)"; then
    echo "$output" >&2
    echo "mypy: findings above (fix them; silence a wrong one on its line with" \
         "'# type: ignore[code]' and say why)" >&2
    exit 1
fi
# --follow-imports=silent: the modules they import are read for their types, and checked
# strictly only once they are in the list themselves.
if ! output="$(.venv/bin/mypy --strict --follow-imports=silent "${STRICT_MODULES[@]}" 2>&1)"; then
    echo "$output" >&2
    echo "mypy --strict: findings above in STRICT_MODULES (scripts/check.sh)" >&2
    exit 1
fi
echo "ruff: clean; mypy: no findings (--strict: ${#STRICT_MODULES[@]} modules)"
