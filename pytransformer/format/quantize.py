"""Conversions of float32 matrices to the stored dtypes of docs/format.md."""

import numpy as np


def to_f16(matrix: np.ndarray, name: str) -> np.ndarray:
    """IEEE half precision, rounded to nearest even; refuses values beyond its range (65504)."""
    with np.errstate(over="ignore"):
        converted = matrix.astype(np.float16)
    if not np.isfinite(converted).all():
        raise ValueError(f"tensor '{name}': values exceed the float16 range (|x| > 65504)")
    return converted


def to_bf16(matrix: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16): the upper half of each float32, rounded to nearest even.

    The input must be finite (the writer checks); a value within half a bf16 step of the float32
    maximum rounds to infinity, as in every bf16 conversion.
    """
    bits = np.ascontiguousarray(matrix, dtype=np.float32).view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return ((bits + rounding) >> np.uint32(16)).astype(np.uint16)


def to_int8(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: (q int8 [rows, cols], scale float32 [rows]), value = q * scale.

    scale = max|row| / 127, so each element is within scale / 2 of its original value. A row of
    zeros (or of values so small that max|row| / 127 underflows to 0) gets scale 1.0 and
    quantizes to zeros: scales are always finite and positive, which the reader checks.
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    scale = (np.abs(matrix).max(axis=1) / np.float32(127)).astype(np.float32)
    scale[scale == 0] = 1.0
    quantized = np.rint(matrix / scale[:, None])
    np.clip(quantized, -127, 127, out=quantized)
    return quantized.astype(np.int8), scale
