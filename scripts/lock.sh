#!/usr/bin/env bash
# Refreshes requirements.lock: every direct and transitive dependency of avsep (with the dev
# extra) pinned to an exact version, for every platform and Python >= 3.10 (uv's universal
# resolution writes environment markers where versions differ). Run after editing the
# dependencies in pyproject.toml, then `bash scripts/setup.sh` and the test suite.
#   bash scripts/lock.sh               # keep the locked versions that still satisfy pyproject
#   bash scripts/lock.sh --upgrade     # move every package to its newest allowed release
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/uv ]; then UV=.venv/bin/uv
elif command -v uv >/dev/null 2>&1; then UV=uv
else python3 -m pip install -q --user 'uv>=0.9,<0.10'; UV="python3 -m uv"; fi
$UV pip compile pyproject.toml --extra dev --universal --python-version 3.10 \
    --no-header --annotation-style line --output-file requirements.lock "$@"
{
    echo "# Exact versions of every dependency of avsep (extra: dev), for Python >= 3.10 on any"
    echo "# platform. Written by scripts/lock.sh (uv pip compile --universal); do not edit by hand."
    echo "# scripts/setup.sh installs exactly this file; tests/test_lock.py checks it against"
    echo "# pyproject.toml."
    cat requirements.lock
} > requirements.lock.tmp && mv requirements.lock.tmp requirements.lock
