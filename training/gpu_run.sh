#!/usr/bin/env bash
# Trains the default model on a lent GPU in one short call, from a run directory prepared on
# the CPU machine, and brings back what the CPU machine needs to finish the run.
#
# On the CPU machine (the corpora's clean-up tools and the compiled package are there):
#   python -m training.train --run-dir training-runs/gpu1 --prepare-only
# On the GPU machine, through the device tool (carry: training-runs/gpu1; it holds spm.model,
# examples.pt and start.pt, under 64 MiB):
#   bash training/gpu_run.sh training-runs/gpu1 8
# Back on the CPU machine, with result.pt and train.log copied from $OUT into the run dir:
#   python -m training.train --run-dir training-runs/gpu1 --finish-only
# --finish-only exports the averaged weights, scores them against the shipped model on the dev
# and test sets and ships them only if the dev score is better.
set -euo pipefail
run_dir="${1:?usage: gpu_run.sh RUN_DIR MINUTES}"
minutes="${2:?usage: gpu_run.sh RUN_DIR MINUTES}"
out="${OUT:-$run_dir/out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
status=0
python -m training.train --run-dir "$run_dir" --device cuda --bf16 --threads 8 \
  --minutes "$minutes" --max-tokens 12000 --checkpoint-minutes 2 --no-finish || status=$?
for name in result.pt train.log; do
  if [ -f "$run_dir/$name" ]; then cp "$run_dir/$name" "$out/"; fi
done
exit "$status"
