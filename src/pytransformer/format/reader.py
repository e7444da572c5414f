"""read_model(): a whole model file as Python values and float32 arrays."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pytransformer import _core
from pytransformer.format.quantize import BLOCK_DTYPES, BlockMatrix, Int8Matrix, from_blocks


def read_model(path: str | os.PathLike[str], keep_blocks: bool = False,
               ) -> tuple[dict[str, Any], dict[str, np.ndarray | BlockMatrix | Int8Matrix]]:
    """(metadata, tensors) of a model file, validated by the C++ reader.

    Tensors are float32 copies (f16/bf16 widened, int8 multiplied by its row scales, q8_0 and
    q4_1 blocks dequantised here as docs/format.md says: d x q, or d x n then + m, each rounded
    to float32, which is gguf.quants.dequantize's result bit for bit); the ``.scale`` tensors of
    int8 matrices are folded in and not returned, so the result can be passed back to
    write_model(). An int8 matrix's ``.input_scale`` is not returned either (the float copy does
    not need it; writing it back drops it). keep_blocks: q8_0 and q4_1 tensors are returned as
    BlockMatrix of the file's bytes instead, and int8 matrices with an input scale as
    Int8Matrix, which write_model() stores unchanged. Tensors that share bytes in the file
    (tied weights) are returned as the same object, so write_model() ties them again. Every
    tensor read is checked against the file's checksums (when it has them).
    Raises ModelFormatError for any problem with the file.
    """
    model_file = _core.ModelFile(path)
    int8_matrices = {
        name for name in model_file.tensor_names() if model_file.tensor_info(name)[0] == "int8"
    }
    tensors: dict[str, np.ndarray | BlockMatrix] = {}
    by_location: dict[tuple[int, str, tuple[int, ...]], np.ndarray | BlockMatrix] = {}
    for name in model_file.tensor_names():
        if name.endswith(".scale") and name[: -len(".scale")] in int8_matrices:
            continue
        if name.endswith(".input_scale") and name[: -len(".input_scale")] in int8_matrices:
            continue
        dtype, shape = model_file.tensor_info(name)
        location = (model_file.tensor_offset(name), dtype, shape)
        if location not in by_location:
            if dtype in BLOCK_DTYPES:
                data = np.asarray(model_file.tensor(name, dequantize=False, verify=True),
                                  dtype=np.uint8)
                blocks = BlockMatrix(dtype, shape, data.reshape(shape[0], -1))
                by_location[location] = blocks if keep_blocks else from_blocks(
                    blocks.data, dtype, blocks.shape)
            elif (keep_blocks and dtype == "int8"
                  and name + ".input_scale" in model_file.tensor_names()):
                by_location[location] = Int8Matrix(
                    np.asarray(model_file.tensor(name, dequantize=False, verify=True)),
                    np.asarray(model_file.tensor(name + ".scale", verify=True), np.float32),
                    float(model_file.tensor(name + ".input_scale", verify=True)[0]))
            else:
                by_location[location] = model_file.tensor(name, verify=True)
        tensors[name] = by_location[location]
    return model_file.metadata, tensors
