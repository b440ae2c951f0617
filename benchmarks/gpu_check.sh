#!/usr/bin/env bash
# The standing GPU checks as one script, for a machine with one GPU (docs/gpu.md): the Sound
# of Pixels step at the original's batch (80 mixtures of 2 sources), the original code's
# modules beside avsep's on the same card in the same run, then avsep with torch.compile, a
# profile of where avsep's step goes, and the step on real shards (data wait).
#
#   bash benchmarks/gpu_check.sh ORIGINAL [SHARDS]
#
# ORIGINAL: a checkout of github.com/hangzhaomit/Sound-of-Pixels (its models package is
# imported as it is; not part of avsep). SHARDS: prepared Solos-layout shards (e.g. the
# bench stand-in's work/synthetic/bench/shards/solos), optional. PY chooses the Python
# (default: .venv/bin/python where it exists, else python3). Each command's output goes to
# stdout in order; a failing command is reported and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
original=${1:?usage: bash benchmarks/gpu_check.sh ORIGINAL [SHARDS]}
shards=${2:-}
py=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
failed=0

step() {
    echo; echo "### $*"
    "$@" || { echo "### FAILED ($?): $*"; failed=1; }
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "avsep revision: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

gpu=(--device cuda --batch 80)
step "$py" benchmarks/original_step.py --original "$original" "${gpu[@]}"
step "$py" benchmarks/original_step.py --original "$original" "${gpu[@]}" --bf16 --channels-last
step "$py" benchmarks/train.py "${gpu[@]}" --bf16 --channels-last --steps 15
step "$py" benchmarks/train.py "${gpu[@]}" --bf16 --channels-last --steps 15 --compile
step "$py" benchmarks/train.py "${gpu[@]}" --bf16 --channels-last --steps 5 --profile 3
if [ -n "$shards" ]; then
    step "$py" benchmarks/train.py "${gpu[@]}" --bf16 --channels-last --steps 15 \
        --data "$shards" --workers "$(( $(nproc) - 1 ))"
fi
exit $failed
