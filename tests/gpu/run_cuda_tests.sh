#!/usr/bin/env bash
# The CUDA checks for a lent GPU machine, in one short call of the device tool (issue 15):
#   bash tests/gpu/run_cuda_tests.sh
# Builds the package with the CUDA backend (the machine has nvcc, cmake, pybind11; nothing can be
# downloaded there, hence --no-build-isolation --no-deps), then runs the CUDA tests and the
# device tests of the Translator, which compare the GPU with the CPU on the same models. Writes
# the build log, pytest's report and nvidia-smi's view to $OUT.
set -uo pipefail
out="${OUT:-/tmp/cuda-tests}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
PYTRANSFORMER_CUDA=ON pip install --no-build-isolation --no-deps . > "$out/build.log" 2>&1 \
  || { tail -40 "$out/build.log"; exit 1; }
cd /tmp  # the installed package, not the source tree
python -m pytest -rs -q -p no:cacheprovider \
  "$OLDPWD/tests/python/test_cuda.py" "$OLDPWD/tests/python/test_cuda_ops.py" \
  "$OLDPWD/tests/python/test_cuda_model.py" "$OLDPWD/tests/python/test_translator_device.py" \
  "$OLDPWD/tests/python/test_cuda_language_model.py" \
  2>&1 | tee "$out/pytest.txt"
exit "${PIPESTATUS[0]}"
