#!/bin/bash
# The one prepared command a lent GPU machine runs (see benchmarks/gpu_prepare.sh): install the carried wheels,
# then benchmarks/bench_gpu.py with the default tiny run; results and the log land in $OUT (gpu.json, gpu.md).
# Copy them into benchmarks/results/ here and rerun `python -c "import run; run.write_summary(False, 1)"` in
# benchmarks/ to fold them into SUMMARY.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg WANDB_MODE=offline
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.csv" 2>&1
python3 -c "import torch, hydra, pycocotools; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  2>&1 | tee "$OUT/log.txt"
# --quick: 5 timed steps per row; the whole call must fit the 15-minute device budget with room for one rerun
cd benchmarks && timeout 520 python3 bench_gpu.py --quick --reference ../.ref/ConditionalDETR --tiny-run fp32 \
  --out "$OUT" 2>&1 \
  | grep -v -i "warn" | tee -a "$OUT/log.txt"
