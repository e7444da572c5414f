"""GGUF file reader (llama.cpp's model format, versions 2 and 3), pure Python + numpy.

`read_gguf(path)` memory-maps the file and parses, trusting nothing:

- the header: magic ``GGUF``, version (2 or 3), tensor count, metadata count (little-endian);
- every metadata key/value pair: all 13 GGUF value types, strings, arrays (nested too);
- the tensor directory: name, dims, GGML type, offset into the data section, whose start is
  padded to ``general.alignment`` (default 32).

Every count, length, offset and shape is checked against the bytes that remain before anything
is allocated; any fault (truncation, bad magic, unsupported version, absurd counts, unknown
value or tensor types, dims whose product overflows, tensor data that is misaligned, overlaps
another tensor or runs past the end of the file, ...) raises `GgufError` (a ValueError) whose
message names the file and what is wrong. OSError from opening the file passes through.

Metadata values: integers -> int, floats -> float, bool -> bool, strings -> str (UTF-8;
undecodable bytes kept with ``errors="surrogateescape"``, so ``s.encode("utf-8",
"surrogateescape")`` gives the exact bytes back), arrays of numbers or bools -> 1-D numpy arrays
of the matching little-endian dtype (owned copies), arrays of strings -> list[str], arrays of
arrays -> list of those.

Shape convention: `GgufTensor.shape` is in **numpy order** (row-major, slowest dimension first),
i.e. the GGUF ``ne`` dims reversed. A Linear weight with ``out`` x ``in`` features (GGUF dims
``[in, out]``) has ``shape == (out, in)`` and `dequantize()` returns an array of that shape.
`GgufTensor.dims` keeps the GGUF order (``ne[0]`` first, the contiguous dimension), which is
what ``gguf.GGUFReader``'s ``ReaderTensor.shape`` reports.

`GgufTensor.dequantize()` returns float32 for F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and
Q6_K (vectorised over blocks, bit-identical to ``gguf.quants.dequantize``); other known types
can be read but raise `GgufError` on dequantisation. Every tensor's bytes are also available
unchanged: `GgufTensor.data` (flat) and `GgufTensor.raw_rows()` (one row of bytes per row of
`shape`: for Q8_0 and Q4_1, the rows of blocks that pytransformer.format.BlockMatrix holds).

The mapping stays open while the GgufFile, a GgufTensor or an array from `.data` is alive.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["GgufError", "GgufFile", "GgufTensor", "read_gguf", "SUPPORTED_TYPES"]

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_ARRAY_NESTING = 8
_INT64_MAX = (1 << 63) - 1
QK_K = 256


class GgufError(ValueError):
    """A GGUF file is malformed, hostile or uses something this reader does not support."""


# --- value types (GGUF spec, gguf_type) -----------------------------------------------------

_VT_UINT8, _VT_INT8, _VT_UINT16, _VT_INT16, _VT_UINT32, _VT_INT32 = 0, 1, 2, 3, 4, 5
_VT_FLOAT32, _VT_BOOL, _VT_STRING, _VT_ARRAY, _VT_UINT64, _VT_INT64, _VT_FLOAT64 = (
    6, 7, 8, 9, 10, 11, 12)

# Fixed-size value types: id -> little-endian numpy dtype.
_SCALAR_DTYPES: dict[int, np.dtype] = {
    _VT_UINT8: np.dtype("u1"), _VT_INT8: np.dtype("i1"),
    _VT_UINT16: np.dtype("<u2"), _VT_INT16: np.dtype("<i2"),
    _VT_UINT32: np.dtype("<u4"), _VT_INT32: np.dtype("<i4"),
    _VT_FLOAT32: np.dtype("<f4"), _VT_BOOL: np.dtype("u1"),
    _VT_UINT64: np.dtype("<u8"), _VT_INT64: np.dtype("<i8"), _VT_FLOAT64: np.dtype("<f8"),
}
_INTEGER_VTS = {_VT_UINT8, _VT_INT8, _VT_UINT16, _VT_INT16, _VT_UINT32, _VT_INT32,
                _VT_UINT64, _VT_INT64}

# --- tensor types (ggml_type): id -> (name, elements per block, bytes per block) -------------

_TENSOR_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}


# --- file structures -------------------------------------------------------------------------

@dataclass(eq=False)
class GgufTensor:
    """One tensor of a GGUF file.

    name: the tensor's name. shape: numpy order (GGUF dims reversed); dims: GGUF order.
    type: GGML type name ("Q4_1"); type_id: its number. offset: absolute byte offset of the
    data in the file; nbytes: its size.
    """

    name: str
    shape: tuple[int, ...]
    dims: tuple[int, ...]
    type: str
    type_id: int
    offset: int
    nbytes: int
    path: str = field(repr=False)
    _buffer: Any = field(repr=False)

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def data(self) -> np.ndarray:
        """The raw bytes (read-only uint8 view of the mapping, flat)."""
        if self.nbytes == 0:
            return np.empty(0, dtype=np.uint8)
        return np.frombuffer(self._buffer, dtype=np.uint8, count=self.nbytes,
                             offset=self.offset)

    @property
    def block_values(self) -> int:
        """Elements per block of the type (1 for F32, F16, ...; 32 for Q8_0, Q4_1)."""
        return _TENSOR_TYPES[self.type_id][1]

    @property
    def block_bytes(self) -> int:
        """Bytes per block of the type (34 for Q8_0, 20 for Q4_1)."""
        return _TENSOR_TYPES[self.type_id][2]

    def raw_rows(self) -> np.ndarray:
        """The raw bytes, unchanged, as a read-only uint8 view of the mapping of shape
        ``shape[:-1] + (shape[-1] / block_values * block_bytes,)``: one row of bytes per row of
        `shape` (numpy order), each holding that row's blocks as the file stores them."""
        row_bytes = self.shape[-1] // self.block_values * self.block_bytes if self.shape else 0
        return self.data.reshape(*self.shape[:-1], row_bytes)

    def dequantize(self) -> np.ndarray:
        """The values as a new float32 array of `shape` (numpy order)."""
        kernel = _DEQUANTIZERS.get(self.type)
        if kernel is None:
            raise GgufError(f"{self.path}: tensor {self.name!r} has type {self.type}, which "
                            f"cannot be dequantised (supported: {', '.join(SUPPORTED_TYPES)})")
        block_elems, block_bytes = _TENSOR_TYPES[self.type_id][1:]
        n_blocks = self.nbytes // block_bytes
        out = np.empty(n_blocks * block_elems, dtype=np.float32)
        blocks = self.data.reshape(n_blocks, block_bytes)
        # Chunks bound the temporaries (a few times the chunk's float32 size).
        step = max(1, (1 << 20) // block_elems)
        for start in range(0, n_blocks, step):
            stop = min(n_blocks, start + step)
            out[start * block_elems:stop * block_elems] = kernel(blocks[start:stop]).reshape(-1)
        return out.reshape(self.shape)


@dataclass(eq=False)
class GgufFile:
    """A parsed GGUF file: version, metadata (key -> value, file order), tensors (name ->
    GgufTensor, file order), alignment and the absolute offset of the data section."""

    path: str
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, GgufTensor]
    alignment: int
    data_offset: int

    def __repr__(self) -> str:
        return (f"GgufFile({self.path!r}, version={self.version}, "
                f"{len(self.metadata)} metadata keys, {len(self.tensors)} tensors)")


# --- parsing -----------------------------------------------------------------------------------

class _Cursor:
    """Bounds-checked little-endian reads from the mapped file."""

    def __init__(self, buffer: Any, size: int, path: str) -> None:
        self.buffer = buffer
        self.size = size
        self.path = path
        self.pos = 0

    def error(self, message: str) -> GgufError:
        return GgufError(f"{self.path}: {message}")

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise self.error(f"truncated: {what} needs {n} bytes at offset {self.pos}, "
                             f"but only {self.size - self.pos} remain")

    def unpack(self, fmt: str, n: int, what: str) -> Any:
        self.need(n, what)
        value = struct.unpack_from(fmt, self.buffer, self.pos)[0]
        self.pos += n
        return value

    def u32(self, what: str) -> int:
        return self.unpack("<I", 4, what)

    def u64(self, what: str) -> int:
        return self.unpack("<Q", 8, what)

    def raw_string(self, what: str) -> bytes:
        start = self.pos
        n = self.u64(f"length of {what}")
        if n > self.size - self.pos:
            raise self.error(f"{what} at offset {start} claims {n} bytes, but only "
                             f"{self.size - self.pos} remain")
        data = self.buffer[self.pos:self.pos + n]
        self.pos += n
        return data

    def name(self, what: str) -> str:
        start = self.pos
        data = self.raw_string(what)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"{what} at offset {start} is not valid UTF-8") from None

    def text(self, what: str) -> str:
        return self.raw_string(what).decode("utf-8", "surrogateescape")

    def array(self, count: int, dtype: np.dtype) -> np.ndarray:
        values = np.frombuffer(self.buffer, dtype=dtype, count=count, offset=self.pos).copy()
        self.pos += count * dtype.itemsize
        return values


def _read_value(cur: _Cursor, vtype: int, key: str, depth: int = 0) -> Any:
    dtype = _SCALAR_DTYPES.get(vtype)
    if dtype is not None:
        start = cur.pos
        cur.need(dtype.itemsize, f"value of {key!r}")
        value = cur.array(1, dtype)[0].item()
        if vtype == _VT_BOOL:
            if value > 1:
                raise cur.error(f"bool value of {key!r} at offset {start} is {value}, not 0/1")
            return bool(value)
        return value
    if vtype == _VT_STRING:
        return cur.text(f"string value of {key!r}")
    if vtype == _VT_ARRAY:
        if depth >= MAX_ARRAY_NESTING:
            raise cur.error(f"array value of {key!r} is nested more than "
                            f"{MAX_ARRAY_NESTING} deep")
        start = cur.pos
        item_type = cur.u32(f"array item type of {key!r}")
        count = cur.u64(f"array length of {key!r}")
        remaining = cur.size - cur.pos
        item_dtype = _SCALAR_DTYPES.get(item_type)
        if item_dtype is not None:
            if count > remaining // item_dtype.itemsize:
                raise cur.error(f"array {key!r} at offset {start} claims {count} items of "
                                f"{item_dtype.itemsize} bytes, but only {remaining} bytes remain")
            values = cur.array(count, item_dtype)
            if item_type == _VT_BOOL:
                if values.size and values.max() > 1:
                    raise cur.error(f"bool array {key!r} at offset {start} holds values "
                                    f"other than 0/1")
                values = values.astype(np.bool_)
            return values
        if item_type == _VT_STRING:
            minimum = 8
        elif item_type == _VT_ARRAY:
            minimum = 12
        else:
            raise cur.error(f"array {key!r} at offset {start} has unknown item type "
                            f"{item_type}")
        if count > remaining // minimum:
            raise cur.error(f"array {key!r} at offset {start} claims {count} items, but only "
                            f"{remaining} bytes remain")
        if item_type == _VT_STRING:
            what = f"string in array {key!r}"
            return [cur.text(what) for _ in range(count)]
        return [_read_value(cur, _VT_ARRAY, key, depth + 1) for _ in range(count)]
    raise cur.error(f"metadata key {key!r} has unknown value type {vtype}")


def _parse(buffer: Any, size: int, path: str) -> GgufFile:
    cur = _Cursor(buffer, size, path)
    cur.need(4, "magic")
    magic = bytes(buffer[0:4])
    if magic != MAGIC:
        raise cur.error(f"not a GGUF file (magic {magic!r}, expected {MAGIC!r})")
    cur.pos = 4
    version = cur.u32("version")
    if version not in SUPPORTED_VERSIONS:
        raise cur.error(f"unsupported GGUF version {version} (supported: 2, 3)")
    n_tensors = cur.u64("tensor count")
    n_kv = cur.u64("metadata count")
    # Lower bounds on the bytes each entry takes: key length + type + 1-byte value; name
    # length + n_dims + type + offset.
    if n_kv > (size - cur.pos) // 13:
        raise cur.error(f"metadata count {n_kv} cannot fit in the {size - cur.pos} bytes left")
    if n_tensors > (size - cur.pos) // 24:
        raise cur.error(f"tensor count {n_tensors} cannot fit in the {size - cur.pos} bytes "
                        f"left")

    metadata: dict[str, Any] = {}
    types: dict[str, int] = {}
    for _ in range(n_kv):
        start = cur.pos
        key = cur.name("metadata key")
        if key in metadata:
            raise cur.error(f"duplicate metadata key {key!r} at offset {start}")
        vtype = cur.u32(f"value type of {key!r}")
        metadata[key] = _read_value(cur, vtype, key)
        types[key] = vtype

    alignment = DEFAULT_ALIGNMENT
    if "general.alignment" in metadata:
        value = metadata["general.alignment"]
        if types["general.alignment"] not in _INTEGER_VTS:
            raise cur.error("general.alignment is not an integer")
        if value <= 0 or value & (value - 1):
            raise cur.error(f"general.alignment is {value}, not a positive power of two")
        alignment = value

    infos = []
    names: set[str] = set()
    for _ in range(n_tensors):
        start = cur.pos
        name = cur.name("tensor name")
        if name in names:
            raise cur.error(f"duplicate tensor name {name!r} at offset {start}")
        names.add(name)
        n_dims = cur.u32(f"dimension count of tensor {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise cur.error(f"tensor {name!r} has {n_dims} dimensions (1 to {MAX_DIMS} "
                            f"allowed)")
        dims = tuple(cur.u64(f"dims of tensor {name!r}") for _ in range(n_dims))
        type_id = cur.u32(f"type of tensor {name!r}")
        offset = cur.u64(f"offset of tensor {name!r}")
        if type_id not in _TENSOR_TYPES:
            raise cur.error(f"tensor {name!r} has unknown type {type_id}")
        type_name, block_elems, block_bytes = _TENSOR_TYPES[type_id]
        n_elements = 1
        for d in dims:
            n_elements *= d
        if n_elements > _INT64_MAX:
            raise cur.error(f"tensor {name!r} dims {list(dims)} overflow (product "
                            f"{n_elements} > 2^63-1)")
        if dims[0] % block_elems:
            raise cur.error(f"tensor {name!r} of type {type_name} has a row of {dims[0]} "
                            f"elements, not a multiple of its block size {block_elems}")
        nbytes = n_elements // block_elems * block_bytes
        if offset % alignment:
            raise cur.error(f"tensor {name!r} offset {offset} is not a multiple of the "
                            f"alignment {alignment}")
        infos.append((name, dims, type_name, type_id, offset, nbytes))

    data_offset = cur.pos + (-cur.pos) % alignment
    if infos and data_offset > size:
        raise cur.error(f"data section would start at offset {data_offset} (alignment "
                        f"{alignment}), past the end of the file ({size} bytes)")
    tensors: dict[str, GgufTensor] = {}
    for name, dims, type_name, type_id, offset, nbytes in infos:
        if data_offset + offset + nbytes > size:
            raise cur.error(f"tensor {name!r} data (offset {data_offset + offset}, {nbytes} "
                            f"bytes) runs past the end of the file ({size} bytes)")
        tensors[name] = GgufTensor(name, tuple(reversed(dims)), dims, type_name, type_id,
                                   data_offset + offset, nbytes, path, buffer)
    previous = None
    for t in sorted(tensors.values(), key=lambda t: (t.offset, t.nbytes)):
        if previous is not None and t.offset < previous.offset + previous.nbytes:
            raise cur.error(f"tensor {t.name!r} data overlaps tensor {previous.name!r}")
        if previous is None or t.nbytes:
            previous = t
    return GgufFile(path, version, metadata, tensors, alignment, data_offset)


def read_gguf(path: str | os.PathLike) -> GgufFile:
    """Memory-maps and parses a GGUF file (see the module docstring); raises GgufError."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 24:
            # Too short for the header (mmap also refuses empty files).
            if size >= 4 and f.read(4) != MAGIC:
                raise GgufError(f"{path}: not a GGUF file (bad magic)")
            raise GgufError(f"{path}: truncated: {size} bytes, a GGUF header takes 24")
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return _parse(buffer, size, path)


# --- dequantisation ----------------------------------------------------------------------------
# Each kernel takes blocks: (n, block_bytes) uint8 and returns (n, block_elems) float32. The
# arithmetic order matches ggml's reference dequantisers (and gguf.quants), so results are
# bit-identical to gguf.quants.dequantize.

def _f16(blocks: np.ndarray, start: int) -> np.ndarray:
    """(n, 1) float32 from the little-endian float16 at byte `start` of each block."""
    return np.ascontiguousarray(blocks[:, start:start + 2]).view("<f2").astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """(..., k) bytes -> (..., 2, k): low nibbles then high nibbles."""
    return np.stack([qs & 0x0F, qs >> 4], axis=-2)


def _deq_f32(blocks: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(blocks).view("<f4")


def _deq_f16(blocks: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(blocks).view("<f2").astype(np.float32)


def _deq_bf16(blocks: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(blocks).view("<u2").astype(np.uint32) << 16
    return bits.view(np.float32)


def _deq_q8_0(blocks: np.ndarray) -> np.ndarray:
    # d: f16, qs: int8[32]; x = d * q
    q = np.ascontiguousarray(blocks[:, 2:]).view(np.int8).astype(np.float32)
    return q * _f16(blocks, 0)


def _deq_q4_0(blocks: np.ndarray) -> np.ndarray:
    # d: f16, qs[16]: element j = low nibble of qs[j], element j+16 = high nibble; x = d*(q-8)
    q = _nibbles(blocks[:, 2:]).reshape(-1, 32).astype(np.int8) - np.int8(8)
    return _f16(blocks, 0) * q.astype(np.float32)


def _deq_q4_1(blocks: np.ndarray) -> np.ndarray:
    # d: f16, m: f16, qs[16] packed as Q4_0; x = d*q + m
    q = _nibbles(blocks[:, 4:]).reshape(-1, 32).astype(np.float32)
    return _f16(blocks, 0) * q + _f16(blocks, 2)


def _k_scales(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K: the super-block's d, dmin (f16) and 12 bytes of eight six-bit scales and
    mins -> (d * scale, dmin * min) per 32-element sub-block, each (n, 8, 1)."""
    scales = blocks[:, 4:16]
    a, b, c = scales[:, 0:4], scales[:, 4:8], scales[:, 8:12]
    sc = np.concatenate([a & 0x3F, (c & 0x0F) | ((a >> 6) << 4)], axis=1)
    mn = np.concatenate([b & 0x3F, (c >> 4) | ((b >> 6) << 4)], axis=1)
    return ((_f16(blocks, 0) * sc.astype(np.float32))[:, :, None],
            (_f16(blocks, 2) * mn.astype(np.float32))[:, :, None])


def _deq_q4_k(blocks: np.ndarray) -> np.ndarray:
    # d, dmin: f16, scales[12], qs[128]: 4 chunks of 32 bytes, chunk c's low nibbles are
    # sub-block 2c, its high nibbles sub-block 2c+1; x = (d*sc)*q - dmin*m per 32-sub-block
    n = blocks.shape[0]
    d, dm = _k_scales(blocks)
    q = _nibbles(blocks[:, 16:].reshape(n, 4, 32)).reshape(n, 8, 32).astype(np.float32)
    return (d * q - dm).reshape(n, QK_K)


def _deq_q5_k(blocks: np.ndarray) -> np.ndarray:
    # as Q4_K plus qh[32] (before qs): bit i of qh[l] is bit 4 of element l of sub-block i
    n = blocks.shape[0]
    d, dm = _k_scales(blocks)
    qh = blocks[:, 16:48]
    high = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1
    low = _nibbles(blocks[:, 48:].reshape(n, 4, 32)).reshape(n, 8, 32)
    q = (low | (high << 4)).astype(np.float32)
    return (d * q - dm).reshape(n, QK_K)


def _deq_q6_k(blocks: np.ndarray) -> np.ndarray:
    # ql[128], qh[64], scales: int8[16], d: f16. Two halves of 128 elements; half h uses
    # ql[64h:64h+64] (two 32-byte chunks) and qh[32h:32h+32]; its four 32-element runs are
    # chunk0 low, chunk1 low, chunk0 high, chunk1 high nibbles, with bits 2r..2r+1 of qh as
    # bits 4-5; q - 32, times d*scale per 16 elements.
    n = blocks.shape[0]
    ql = blocks[:, 0:128].reshape(n, 2, 2, 32)
    low = np.concatenate([ql & 0x0F, ql >> 4], axis=2)  # (n, 2, 4, 32)
    qh = blocks[:, 128:192].reshape(n, 2, 1, 32)
    high = (qh >> np.array([0, 2, 4, 6], dtype=np.uint8)[None, None, :, None]) & 3
    q = (low | (high << 4)).astype(np.int8) - np.int8(32)
    scales = np.ascontiguousarray(blocks[:, 192:208]).view(np.int8).astype(np.float32)
    d = (_f16(blocks, 208) * scales)[:, :, None]  # (n, 16, 1)
    return (d * q.reshape(n, 16, 16).astype(np.float32)).reshape(n, QK_K)


_DEQUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "F32": _deq_f32, "F16": _deq_f16, "BF16": _deq_bf16, "Q8_0": _deq_q8_0,
    "Q4_0": _deq_q4_0, "Q4_1": _deq_q4_1, "Q4_K": _deq_q4_k, "Q5_K": _deq_q5_k,
    "Q6_K": _deq_q6_k,
}
SUPPORTED_TYPES = tuple(_DEQUANTIZERS)
