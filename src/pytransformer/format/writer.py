"""write_model(): the Python writer of the model file (docs/format.md).

The file is validated against the C++ reader's own rules before a byte is written (metadata via
``_core.expected_tensors``, which parses the config exactly as the reader does; tensor names and
shapes against the list it returns), then streamed tensor by tensor into a temporary file in the
destination directory that replaces the destination atomically once complete. The CRC-32 of
every tensor's bytes (``checksum.crc32``) is computed as they are written and filled into the
metadata, written with zeros in their place first, before the file is renamed.
"""

from __future__ import annotations

import numbers
import os
import re
import struct
import tempfile
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Mapping

import numpy as np

from pytransformer import _core
from pytransformer.format import quantize as quantization
from pytransformer.format.constants import (
    ALIGNMENT,
    BLOCK_BYTES,
    BLOCK_VALUES,
    CHECKSUM_KEY,
    DTYPE_NAMES,
    FORMAT_VERSION,
    MAGIC,
    MAX_NAME_LENGTH,
    QUANTIZE_DTYPES,
    DType,
    ValueType,
    stored_bytes,
)
from pytransformer.format.quantize import BLOCK_DTYPES, BlockMatrix, Int8Matrix

_KEY_PATTERN = re.compile(r"[a-z0-9_.]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

MetadataValue = bool | int | float | str | bytes | list


def write_model(
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any],
    tensors: Mapping[str, np.ndarray | BlockMatrix | Int8Matrix],
    quantize: str | None = None,
) -> None:
    """Writes a model file that the C++ reader accepts, or raises before touching `path`.

    metadata: key -> bool, int (int64), float (float64), str, bytes, or a list/tuple (or 1-D
    numpy array) of all int, all str, or numbers (float64 array); numpy scalars are accepted.
    tensors: exactly the names of ``_core.expected_tensors(metadata)`` with their shapes, any
    real dtype (stored as float32 unless quantized), or for a matrix a BlockMatrix (q8_0 or
    q4_1 blocks) or an Int8Matrix (int8 values, row scales and an optional input scale),
    stored as given whatever `quantize` says. Tensors given as the same array (or views of the
    same memory with the same shape) and stored in the same dtype, or as the same BlockMatrix
    or Int8Matrix object, are stored once and share their bytes.
    quantize: None (float32), "f16" or "bf16" for every quantizable matrix; "int8" (symmetric
    per row, with a float32 ``<name>.scale`` tensor) for the decoder's feed-forward matrices and
    the output projection and f16 for the other matrices (see
    ``quantize.int8_policy_keeps_int8``); "int8_all": int8 for every matrix; "q8_0" or "q4_1":
    every matrix (embeddings and output projection included) whose last dimension is a multiple
    of 32 in those blocks, quantised as ggml's reference quantiser does (bytes identical to
    ``gguf.quants.quantize``), the other matrices f16. Vectors always stay float32.

    Raises ModelFormatError (a ValueError) for metadata the reader would reject, ValueError or
    TypeError for bad tensors or values. The checksums (``checksum.crc32``) are the writer's to
    write: metadata must not hold that key.
    """
    if quantize not in QUANTIZE_DTYPES:
        raise ValueError("quantize must be one of None, "
                         + ", ".join(repr(name) for name in QUANTIZE_DTYPES if name is not None)
                         + f", not {quantize!r}")
    if CHECKSUM_KEY in metadata:
        raise ValueError(f"metadata '{CHECKSUM_KEY}' is written by write_model itself (the "
                         "checksums of the tensors it writes)")
    normalized = normalize_metadata(metadata)
    expected = _core.expected_tensors(normalized)
    entries, blobs = _plan_tensors(expected, tensors, quantize)
    # Placeholder checksums, last in the metadata: filled in once the data is written.
    encoded_metadata = [_encode_entry(key, value) for key, value in normalized.items()]
    encoded_metadata.append(_encode_entry(CHECKSUM_KEY, [0] * len(entries)))
    checksums_offset = 64 + sum(len(e) for e in encoded_metadata) - 8 * len(entries)

    data_size = (blobs[-1].offset + blobs[-1].size) if blobs else 0
    header_region = _header_region(encoded_metadata, entries, data_size)

    def write(out: BinaryIO) -> None:
        out.write(header_region)
        _write_blobs(out, blobs)
        out.seek(checksums_offset)
        out.write(struct.pack(f"<{len(entries)}q", *(entry.blob.crc32 for entry in entries)))

    _write_atomically(path, write)


def rewrite_metadata(source: str | os.PathLike[str], destination: str | os.PathLike[str],
                     metadata: Mapping[str, Any]) -> None:
    """Writes a copy of the model file `source` whose metadata is `metadata` (all of it, as
    write_model takes it; the checksums are carried over), with the same tensor entries and the
    same data bytes (no tensor is converted: an int8 or f16 file stays so). Raises
    ModelFormatError when the result would not be a valid file (metadata that does not describe
    these tensors), before touching `destination`; `destination` may be `source`."""
    if CHECKSUM_KEY in metadata:
        raise ValueError(f"metadata '{CHECKSUM_KEY}' is carried over from the source file")
    model_file = _core.ModelFile(source)
    names = {name: code for code, name in DTYPE_NAMES.items()}
    entries = []
    for name in model_file.tensor_names():
        dtype, shape = model_file.tensor_info(name)
        offset = model_file.tensor_offset(name)
        entries.append(_Entry(name, names[dtype], tuple(shape),
                              _Blob(name, None, names[dtype], False, offset,
                                    stored_bytes(dtype, tuple(shape)))))
    normalized = dict(normalize_metadata(metadata))
    if CHECKSUM_KEY in model_file.metadata:
        normalized[CHECKSUM_KEY] = list(model_file.metadata[CHECKSUM_KEY])
    encoded_metadata = [_encode_entry(key, value) for key, value in normalized.items()]
    with open(source, "rb") as original:
        fields = struct.unpack(_HEADER_LAYOUT, original.read(64))
        source_data_offset, data_size = fields[5], fields[6]
        header_region = _header_region(encoded_metadata, entries, data_size)

        def write(out: BinaryIO) -> None:
            out.write(header_region)
            original.seek(source_data_offset)
            left = data_size
            while left:
                chunk = original.read(min(left, 1 << 24))
                if not chunk:
                    raise _core.ModelFormatError(f"{os.fspath(source)}: shorter than its header says")
                out.write(chunk)
                left -= len(chunk)

        _write_atomically(destination, write, check=True)


# The 64-byte file header (docs/format.md): magic, version, flags, metadata count, tensor
# count, data offset, data size, reserved.
_HEADER_LAYOUT = "<8sIIQQQQ16x"


def _header_region(encoded_metadata: list[bytes], entries: list[_Entry], data_size: int) -> bytes:
    """The bytes before the data section: the header, the metadata entries, the tensor
    entries and the zero padding up to the aligned data offset."""
    directory = b"".join(_encode_tensor_entry(entry) for entry in entries)
    body = b"".join(encoded_metadata) + directory
    data_offset = _align(64 + len(body))
    header = struct.pack(_HEADER_LAYOUT, MAGIC, FORMAT_VERSION, 0, len(encoded_metadata),
                         len(entries), data_offset, data_size)
    return header + body + bytes(data_offset - 64 - len(body))


def _write_atomically(path: str | os.PathLike[str], write: Any, check: bool = False) -> None:
    """write(out) into a temporary file beside `path`, synced, then renamed over it (so `path`
    is never seen half written); check: the C++ reader must accept the file first."""
    destination = os.fspath(path)
    directory_name = os.path.dirname(os.path.abspath(destination))
    descriptor, temporary = tempfile.mkstemp(
        dir=directory_name, prefix="." + os.path.basename(destination) + ".", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        if check:
            _core.ModelFile(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, destination)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_directory(directory_name)


def expected_tensors(metadata: Mapping[str, Any]) -> list[tuple[str, tuple[int, ...], bool]]:
    """[(name, shape, quantizable)] that a file with this metadata holds, in file order.

    Accepts the same values as write_model(); raises ModelFormatError if the reader would
    reject the metadata.
    """
    return _core.expected_tensors(normalize_metadata(metadata))


def normalize_metadata(metadata: Mapping[str, Any]) -> dict[str, MetadataValue]:
    """The metadata as plain Python values (bool, int, float, str, bytes, list) in the form the
    file stores them; raises TypeError/ValueError for keys or values it cannot store."""
    return {key: _normalize_value(key, value) for key, value in metadata.items()}


# --- metadata ---------------------------------------------------------------------------------


def _normalize_value(key: str, value: Any) -> MetadataValue:
    """Plain Python value (bool, int, float, str, bytes or list) with the type rules applied."""
    if not isinstance(key, str) or len(key) > MAX_NAME_LENGTH or not _KEY_PATTERN.fullmatch(key):
        raise ValueError(
            f"metadata key {key!r} must be 1..{MAX_NAME_LENGTH} characters of [a-z0-9_.]"
        )
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise TypeError(f"metadata '{key}': only 1-D numpy arrays can be stored")
        value = value.tolist()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return _checked_int(key, int(value))
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        items = list(value)
        if all(isinstance(item, str) for item in items):
            return items
        if all(isinstance(item, numbers.Integral) and not isinstance(item, (bool, np.bool_))
               for item in items):
            return [_checked_int(key, int(item)) for item in items]
        if all(isinstance(item, numbers.Real) and not isinstance(item, (bool, np.bool_))
               for item in items):
            return [float(item) for item in items]
        raise TypeError(
            f"metadata '{key}': list elements must be all int, all str, or numbers (int/float)"
        )
    raise TypeError(f"metadata '{key}': unsupported value type '{type(value).__name__}'")


def _checked_int(key: str, value: int) -> int:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"metadata '{key}': integer {value} does not fit in int64")
    return value


def _value_type(key: str, value: MetadataValue) -> ValueType:
    if isinstance(value, bool):
        return ValueType.BOOL
    if isinstance(value, int):
        return ValueType.INT64
    if isinstance(value, float):
        return ValueType.FLOAT64
    if isinstance(value, str):
        return ValueType.STRING
    if isinstance(value, bytes):
        return ValueType.BYTES
    if not value:
        known = _core.known_metadata_types().get(key)
        if known is None:
            raise TypeError(f"metadata '{key}': cannot infer the element type of an empty list")
        return ValueType(known) if known in _ARRAY_TYPES else ValueType.INT64_ARRAY
    if isinstance(value[0], str):
        return ValueType.STRING_ARRAY
    if all(isinstance(item, int) for item in value):
        return ValueType.INT64_ARRAY
    return ValueType.FLOAT64_ARRAY


_ARRAY_TYPES = {ValueType.INT64_ARRAY, ValueType.STRING_ARRAY, ValueType.FLOAT64_ARRAY}


def _encode_string(key: str, text: str) -> bytes:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"metadata '{key}': string cannot be encoded as UTF-8") from error
    return struct.pack("<Q", len(data)) + data


def _encode_entry(key: str, value: MetadataValue) -> bytes:
    value_type = _value_type(key, value)
    key_bytes = key.encode("ascii")
    head = struct.pack("<I", len(key_bytes)) + key_bytes + struct.pack("<B", value_type)
    if value_type == ValueType.BOOL:
        body = struct.pack("<B", value)
    elif value_type == ValueType.INT64:
        body = struct.pack("<q", value)
    elif value_type == ValueType.FLOAT64:
        body = struct.pack("<d", value)
    elif value_type == ValueType.STRING:
        body = _encode_string(key, value)
    elif value_type == ValueType.BYTES:
        body = struct.pack("<Q", len(value)) + value
    elif value_type == ValueType.INT64_ARRAY:
        body = struct.pack(f"<Q{len(value)}q", len(value), *value)
    elif value_type == ValueType.FLOAT64_ARRAY:
        body = struct.pack(f"<Q{len(value)}d", len(value), *value)
    else:
        body = struct.pack("<Q", len(value)) + b"".join(_encode_string(key, s) for s in value)
    return head + body


# --- tensors ----------------------------------------------------------------------------------


@dataclass
class _Blob:
    """Bytes stored once in the data section (shared by tied entries)."""

    name: str  # the first entry that refers to it, for error messages
    # The values (a BlockMatrix: its bytes), or the int8 matrix whose scales this blob holds.
    source: np.ndarray | BlockMatrix
    dtype: DType
    is_scale: bool
    offset: int = 0
    size: int = 0
    crc32: int = 0  # of the bytes written, once written


@dataclass
class _Entry:
    name: str
    dtype: DType
    shape: tuple[int, ...]
    blob: _Blob


def _plan_tensors(
    expected: list[tuple[str, tuple[int, ...], bool]],
    tensors: Mapping[str, np.ndarray | BlockMatrix],
    quantize: str | None,
) -> tuple[list[_Entry], list[_Blob]]:
    """Checks names and shapes, decides dtypes, ties shared arrays and lays out the data."""
    expected_names = {name for name, _, _ in expected}
    unexpected = sorted(set(tensors) - expected_names)
    if unexpected:
        raise ValueError(f"unexpected tensors for this metadata: {', '.join(unexpected[:5])}"
                         + (f" (and {len(unexpected) - 5} more)" if len(unexpected) > 5 else ""))
    missing = [name for name, _, _ in expected if name not in tensors]
    if missing:
        raise ValueError(f"missing tensors for this metadata: {', '.join(missing[:5])}"
                         + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))

    entries: list[_Entry] = []
    blobs: list[_Blob] = []
    seen: list[tuple[np.ndarray | BlockMatrix, DType, _Blob, _Blob | None]] = []
    for name, shape, quantizable in expected:
        value = tensors[name]
        if isinstance(value, BlockMatrix):
            array: np.ndarray | BlockMatrix | Int8Matrix = _checked_blocks(name, value, shape,
                                                                           quantizable)
            dtype = BLOCK_DTYPES[value.dtype]
        elif isinstance(value, Int8Matrix):
            array = _checked_int8(name, value, shape, quantizable)
            dtype = DType.INT8
        else:
            # Arrays that share memory stay tied through np.asarray (e.g. two torch tensors of
            # one tied parameter, as state_dict() returns them).
            array = _checked_array(name, value, shape)
            dtype = _stored_dtype(name, shape, quantizable, quantize)
        tied = next((s for s in seen if s[1] == dtype and _same_memory(s[0], array)), None)
        if tied is not None:
            blob, scale_blob, input_blob = tied[2], tied[3], tied[4]
        else:
            blob = _Blob(name, array, dtype, is_scale=False)
            blobs.append(blob)
            scale_blob = input_blob = None
            if dtype == DType.INT8:
                scale_blob = _Blob(name + ".scale", array, DType.F32, is_scale=True)
                blobs.append(scale_blob)
            if isinstance(array, Int8Matrix) and array.input_scale is not None:
                input_blob = _Blob(name + ".input_scale",
                                   np.array([array.input_scale], dtype=np.float32), DType.F32,
                                   is_scale=False)
                blobs.append(input_blob)
            seen.append((array, dtype, blob, scale_blob, input_blob))
        entries.append(_Entry(name, dtype, shape, blob))
        if scale_blob is not None:
            entries.append(_Entry(name + ".scale", DType.F32, (shape[0],), scale_blob))
        if input_blob is not None:
            entries.append(_Entry(name + ".input_scale", DType.F32, (1,), input_blob))

    offset = 0
    for blob in blobs:
        shape = blob.source.shape
        blob.offset = offset
        blob.size = stored_bytes(blob.dtype, (shape[0],) if blob.is_scale else tuple(shape))
        offset = _align(offset + blob.size)
    return entries, blobs


def _stored_dtype(name: str, shape: tuple[int, ...], quantizable: bool,
                  quantize: str | None) -> DType:
    if not quantizable:
        return DType.F32
    if quantize == "int8" and not quantization.int8_policy_keeps_int8(name):
        return DType.F16
    dtype = QUANTIZE_DTYPES[quantize]
    if dtype in BLOCK_BYTES and (len(shape) != 2 or shape[1] % BLOCK_VALUES):
        return DType.F16  # blocks hold 32 consecutive values of a row
    return dtype


def _checked_blocks(name: str, value: BlockMatrix, shape: tuple[int, ...],
                    quantizable: bool) -> BlockMatrix:
    if not quantizable:
        raise ValueError(f"tensor '{name}' is given as {value.dtype} blocks, but it is stored "
                         "as f32 (only weight matrices can be block-quantised)")
    if value.shape != tuple(shape):
        raise ValueError(f"tensor '{name}' has shape {list(value.shape)}, expected {list(shape)}")
    return value


def _checked_int8(name: str, value: Int8Matrix, shape: tuple[int, ...],
                  quantizable: bool) -> Int8Matrix:
    if not quantizable:
        raise ValueError(f"tensor '{name}' is given as an int8 matrix, but it is stored as f32 "
                         "(only weight matrices can be int8)")
    if value.shape != tuple(shape):
        raise ValueError(f"tensor '{name}' has shape {list(value.shape)}, expected {list(shape)}")
    return value


def _checked_array(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"tensor '{name}': dtype {array.dtype} is not a real number type")
    if tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"tensor '{name}' has shape {list(array.shape)}, expected {list(shape)}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"tensor '{name}' contains NaN or infinite values")
    return array


def _same_memory(a: np.ndarray | BlockMatrix, b: np.ndarray | BlockMatrix) -> bool:
    """The same array or BlockMatrix, or two views of exactly the same memory (so identical
    content; for BlockMatrix, the same blocks of the same dtype and shape)."""
    if isinstance(a, Int8Matrix) or isinstance(b, Int8Matrix):
        return a is b
    if isinstance(a, BlockMatrix) or isinstance(b, BlockMatrix):
        return a is b or (isinstance(a, BlockMatrix) and isinstance(b, BlockMatrix)
                          and a.dtype == b.dtype and _same_memory(a.data, b.data))
    return a is b or (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _encode_tensor_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("ascii")
    return (
        struct.pack("<I", len(name)) + name
        + struct.pack("<BB", entry.dtype, len(entry.shape))
        + struct.pack(f"<{len(entry.shape)}Q", *entry.shape)
        + struct.pack("<QQ", entry.blob.offset, entry.blob.size)
    )


def _write_blobs(out: BinaryIO, blobs: list[_Blob]) -> None:
    """Converts and writes one tensor at a time, so memory stays at one tensor's copy."""
    position = 0
    pending_scale: np.ndarray | None = None
    for blob in blobs:
        out.write(bytes(blob.offset - position))
        if blob.is_scale:
            assert pending_scale is not None
            data, pending_scale = pending_scale, None
        else:
            data = _convert(blob)
            if blob.dtype == DType.INT8:
                data, pending_scale = data
        view = np.ascontiguousarray(data).data
        out.write(view)
        blob.crc32 = zlib.crc32(view)
        position = blob.offset + blob.size


def _convert(blob: _Blob) -> Any:
    source = blob.source
    if isinstance(source, BlockMatrix):
        return source.data
    if isinstance(source, Int8Matrix):
        return source.values, source.row_scales
    if blob.dtype == DType.F32:
        return np.asarray(source, dtype=np.float32)
    matrix = np.asarray(source, dtype=np.float32)
    if blob.dtype == DType.F16:
        return quantization.to_f16(matrix, blob.name)
    if blob.dtype == DType.BF16:
        return quantization.to_bf16(matrix)
    if blob.dtype in BLOCK_BYTES:
        return quantization.to_blocks(matrix, DTYPE_NAMES[blob.dtype], blob.name)
    return quantization.to_int8(matrix)


def _align(offset: int) -> int:
    return (offset + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable (best effort: not every platform can open a directory)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
