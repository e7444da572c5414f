"""Where a model runs: the device strings the APIs take ("cpu", "cuda", "cuda:N") and the
optional CUDA backend, imported only when a GPU is asked for."""

from __future__ import annotations

import importlib
import re
from typing import Any

_CUDA_DEVICE = re.compile(r"cuda(?::([0-9]+))?")


def parse_device(device: str) -> int | None:
    """None for "cpu"; the GPU index for "cuda" (0) or "cuda:N"."""
    if device == "cpu":
        return None
    match = _CUDA_DEVICE.fullmatch(device) if isinstance(device, str) else None
    if match is None:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return int(match.group(1) or 0)


def cuda_backend() -> Any:
    """The optional CUDA extension, imported only when a GPU is asked for (the CPU path never
    loads it, nor any CUDA library)."""
    try:
        return importlib.import_module("pytransformer._cuda")
    except ImportError as error:
        raise RuntimeError(
            f"CUDA requested but this installation has no CUDA backend ({error}); reinstall "
            "with PYTRANSFORMER_CUDA=ON (docs/cuda.md)") from None
