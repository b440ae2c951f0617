#!/usr/bin/env bash
# Static checks, run by scripts/test.sh before the tests: ruff (lint) on everything, and mypy
# (types) on the library and data preparation. mypy findings are compared with the known ones
# in .ci/mypy-baseline.txt (file and message, without line numbers, so that edits elsewhere in
# a file do not matter): a new finding fails; a fixed one is reported so the baseline shrinks.
#   bash scripts/check.sh                    # check
#   bash scripts/check.sh --update-baseline  # accept the current findings (after fixing some)
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check avsep data_prep tests benchmarks
baseline=.ci/mypy-baseline.txt
current="$(mktemp)"; trap 'rm -f "$current"' EXIT
# "path:line: error: message  [code]" -> "path: message  [code]", sorted
.venv/bin/mypy avsep data_prep 2>/dev/null | grep ': error:' \
    | sed -E 's/^([^:]+):[0-9]+: error: /\1: /' | LC_ALL=C sort > "$current" || true
if [ "${1:-}" = "--update-baseline" ]; then
    cp "$current" "$baseline"
    echo "mypy baseline: $(wc -l < "$baseline") known findings written to $baseline"
    exit 0
fi
new="$(LC_ALL=C comm -13 "$baseline" "$current")"
fixed="$(LC_ALL=C comm -23 "$baseline" "$current" | wc -l)"
if [ -n "$new" ]; then
    echo "mypy: new findings (not in $baseline):" >&2
    echo "$new" >&2
    echo "(fix them; if a finding is wrong, silence it on its line with '# type: ignore[code]')" >&2
    exit 1
fi
echo "ruff: clean; mypy: no new findings ($(wc -l < "$current") known$( [ "$fixed" -gt 0 ] \
    && echo ", $fixed fixed: run bash scripts/check.sh --update-baseline"))"
