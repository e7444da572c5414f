"""read_model(): a whole model file as Python values and float32 arrays."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pytransformer import _core


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(metadata, tensors) of a model file, validated by the C++ reader.

    Tensors are float32 copies (f16/bf16 widened, int8 multiplied by its row scales); the
    ``.scale`` tensors of int8 matrices are folded in and not returned, so the result can be
    passed back to write_model(). Tensors that share bytes in the file (tied weights) are
    returned as the same array object, so write_model() ties them again. Every tensor read is
    checked against the file's checksums (when it has them).
    Raises ModelFormatError for any problem with the file.
    """
    model_file = _core.ModelFile(path)
    int8_matrices = {
        name for name in model_file.tensor_names() if model_file.tensor_info(name)[0] == "int8"
    }
    tensors: dict[str, np.ndarray] = {}
    by_location: dict[tuple[int, str, tuple[int, ...]], np.ndarray] = {}
    for name in model_file.tensor_names():
        if name.endswith(".scale") and name[: -len(".scale")] in int8_matrices:
            continue
        dtype, shape = model_file.tensor_info(name)
        location = (model_file.tensor_offset(name), dtype, shape)
        if location not in by_location:
            by_location[location] = model_file.tensor(name, verify=True)
        tensors[name] = by_location[location]
    return model_file.metadata, tensors
