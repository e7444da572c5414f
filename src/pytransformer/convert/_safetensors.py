"""A reader of the safetensors format that needs only numpy (no torch, no safetensors package).

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON mapping each
tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the end of
the header), an optional "__metadata__" entry, then the raw row-major little-endian data.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from pytransformer.convert._common import ConversionError

# Element types this reader turns into float32 (BF16 is widened bit-exactly).
_FLOAT_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
                 "F64": np.dtype("<f8")}
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of `path` as a float32 array (F32, F16, BF16 and F64 are accepted).

    Raises ConversionError naming the file when the header or a tensor entry is malformed.
    """
    path = Path(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if data.size < 8:
        raise ConversionError(f"{path}: too short to be a safetensors file")
    (header_size,) = struct.unpack("<Q", data[:8].tobytes())
    if header_size > min(_MAX_HEADER_BYTES, data.size - 8):
        raise ConversionError(f"{path}: header length {header_size} exceeds the file")
    try:
        header = json.loads(data[8:8 + header_size].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"{path}: header is not valid JSON: {error}") from None
    if not isinstance(header, dict):
        raise ConversionError(f"{path}: header is not a JSON object")
    body_start = 8 + header_size
    body_size = data.size - body_start
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _read_entry(path, name, entry, data, body_start, body_size)
    return tensors


def _read_entry(path: Path, name: str, entry: object, data: np.ndarray, body_start: int,
                body_size: int) -> np.ndarray:
    try:
        dtype_name = entry["dtype"]
        shape = [int(d) for d in entry["shape"]]
        begin, end = (int(x) for x in entry["data_offsets"])
    except (TypeError, KeyError, ValueError):
        raise ConversionError(f"{path}: tensor '{name}' has a malformed entry") from None
    if dtype_name not in _FLOAT_DTYPES:
        raise ConversionError(f"{path}: tensor '{name}' has unsupported dtype {dtype_name} "
                              f"(supported: {', '.join(_FLOAT_DTYPES)})")
    dtype = _FLOAT_DTYPES[dtype_name]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if any(d < 0 for d in shape) or not 0 <= begin <= end <= body_size \
            or end - begin != count * dtype.itemsize:
        raise ConversionError(f"{path}: tensor '{name}' has inconsistent shape {shape} and "
                              f"offsets [{begin}, {end}]")
    raw = np.frombuffer(data, dtype=dtype, count=count, offset=body_start + begin).reshape(shape)
    if dtype_name == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)
