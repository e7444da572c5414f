"""Loading pytransformer._cuda for the CUDA tests, and the reasons tests skip without it.

The CUDA backend is an opt-in build (PYTRANSFORMER_CUDA=ON or AUTO, docs/cuda.md). Where it
is not installed its tests skip, except in CI on a machine with nvcc, where a missing module
means the CUDA code was not compiled and linked: test_cuda.py fails there. GPU tests skip with
the backend's own reason (no driver, no device) where no GPU is present.
"""

from __future__ import annotations

import os
import shutil
from types import ModuleType

import pytest


def _load() -> tuple[ModuleType | None, str]:
    try:
        from pytransformer import _cuda
    except ImportError as error:
        return None, (f"pytransformer._cuda is not installed ({error}); build it with "
                      "PYTRANSFORMER_CUDA=ON (docs/cuda.md)")
    return _cuda, ""


cuda, IMPORT_PROBLEM = _load()
NVCC = shutil.which("nvcc")
IN_CI = bool(os.environ.get("CI"))
GPU_PROBLEM = IMPORT_PROBLEM if cuda is None else (cuda.device_problem(0) or "")

needs_module = pytest.mark.skipif(cuda is None, reason=IMPORT_PROBLEM)
needs_gpu = pytest.mark.skipif(bool(GPU_PROBLEM), reason=f"no GPU to run on: {GPU_PROBLEM}")
