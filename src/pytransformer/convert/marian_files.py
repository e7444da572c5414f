"""Readers of Marian's own model files: `.npz`, the binary `.bin` format, and the model
configuration both embed (`special:model.yml`).

What the files hold (Marian's src/common/{binary,io}.cpp, src/common/types.h, and
browsermt/marian-dev's src/tensors/cpu/{integer_common.h,expression_graph_packable.h}):

- `.npz`: a zip of `.npy` arrays (cnpy or numpy). Marian loads every array as float32 whatever
  its numpy type, and a 1-D array of n values as shape [1, n]. `special:model.yml` is the YAML
  text as an int8 array ending in a NUL byte.
- `.bin`, version 1 (all integers little-endian):

  | size | field |
  | --- | --- |
  | 8 | `u64` version, 1 |
  | 8 | `u64` N, the number of items |
  | 32 × N | per item: `u64` name length (with its NUL), `u64` type, `u64` rank, `u64` data bytes |
  | ... | the N names, each NUL-terminated |
  | 4 × ranks | the N shapes, `i32` dimensions outermost first |
  | 8 | `u64` P: padding bytes that follow, so that the data starts at a multiple of 256 |
  | P | padding |
  | ... | the N items' data, one after another, each `data bytes` long (padding may follow) |

  Types are Marian's `Type` codes (`_TYPES` below). `intgemm8` / `intgemm16` items (Bergamot's
  int8 models, written by `marian-conv --gemm-type intgemm8`) hold `rows × cols` integers then
  one float32, the quantisation multiplier `m` of the whole matrix: value = integer / m, with
  `m = 127 / max|W|` for int8 (1024 for int16) and the integers rounded to nearest, in
  -127..127. The integers are Marian's "architecture independent" layout, not intgemm's
  prepared (interleaved) one: Marian prepares them for its CPU kernels when loading
  (`PrepareBQuantizedTransposed`). A matrix of Marian shape [rows, cols] (= [in, out]) is
  stored *transposed*: `cols` rows of `rows` integers, i.e. already [out, in]. The exception is
  every item whose name contains `Wemb` (the embeddings, and in the files written with
  precomputed activation multipliers also `Wemb_QuantMultA`): stored untransposed, and
  dequantised by Marian when loading as `integer * float32(1 / m)`.
- Files converted with `--gemm-type intgemm8 ... --quant-alphas` (`*.intgemm.alphas.bin`, used
  with `gemm-precision: int8shiftAlphaAll`) also carry, for each int8 matrix `X`, a float32
  [1, 1] item `X_QuantMultA`: the fixed multiplier Marian quantises that product's
  activations with (a = round(x × m_A), clipped to -127..127, so 127 / m_A is the clipping
  value), instead of computing `127 / max|x|` for every product. `none_QuantMultA` is the
  output layer's (its matrix is the tied embedding, which has no name of its own there).

Every reader trusts nothing: counts, lengths and shapes are checked against the bytes the file
has before anything is allocated for them, and every problem is one ConversionError naming
the file (and the item).
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pytransformer.convert._common import ConversionError

BINARY_VERSION = 1
CONFIG_ITEM = "special:model.yml"
_HEADER = struct.Struct("<4Q")  # name length, type, rank, data bytes
_MAX_RANK = 8
_MAX_NAME = 4096

# Marian's Type codes (src/common/types.h): TypeClass bits + element size.
_TYPES: dict[int, tuple[str, str | None]] = {
    0x0101: ("int8", "<i1"), 0x0102: ("int16", "<i2"), 0x0104: ("int32", "<i4"),
    0x0108: ("int64", "<i8"),
    0x0201: ("uint8", "<u1"), 0x0202: ("uint16", "<u2"), 0x0204: ("uint32", "<u4"),
    0x0208: ("uint64", "<u8"),
    0x0402: ("float16", "<f2"), 0x0404: ("float32", "<f4"), 0x0408: ("float64", "<f8"),
    0x4101: ("intgemm8", "<i1"), 0x4102: ("intgemm16", "<i2"),
}
# FBGEMM's packed matrices: a layout of one CPU family, whose size is not a function of the
# shape; not readable here.
_PACKED_TYPES = {0x0802: "packed16", 0x1801: "packed8avx2", 0x2801: "packed8avx512"}
QUANTIZED_TYPES = frozenset({"intgemm8", "intgemm16"})


@dataclass(frozen=True, eq=False)
class MarianTensor:
    """One item of a Marian model file.

    `shape` is Marian's (matrices [in, out], vectors [1, n]). `array` holds the values as
    stored: for float and plain integer types an array of `shape`; for `intgemm8` /
    `intgemm16` the integers in their stored layout, [cols, rows] (transposed) unless
    `stored_transposed` is false (names containing `Wemb`: [rows, cols]), and `quant_mult` the
    multiplier they were quantised with (value = integer / quant_mult)."""

    name: str
    type: str
    shape: tuple[int, ...]
    array: np.ndarray
    quant_mult: float | None = None
    stored_transposed: bool = False

    @property
    def quantized(self) -> bool:
        return self.type in QUANTIZED_TYPES

    @property
    def rows(self) -> int:
        """Marian's rows: the product of every dimension but the last."""
        return math.prod(self.shape[:-1])

    @property
    def cols(self) -> int:
        return self.shape[-1]

    def integers(self) -> np.ndarray:
        """A quantised matrix's integers in Marian's orientation: [rows, cols]."""
        self._require_quantized()
        return self.array.T if self.stored_transposed else self.array

    def integers_transposed(self) -> np.ndarray:
        """A quantised matrix's integers as [cols, rows] (= [out, in], our linear layout):
        the stored array itself for matrices stored transposed."""
        self._require_quantized()
        return self.array if self.stored_transposed else self.array.T

    def dequantization_scale(self) -> np.float32:
        """float32(1 / quant_mult): value = integer × this, Marian's own dequantisation of the
        embeddings (and what a per-row int8 scale would hold for every row)."""
        self._require_quantized()
        return np.float32(1.0) / np.float32(self.quant_mult)

    def float32(self) -> np.ndarray:
        """The values as float32 in Marian's shape (a new array): float types converted,
        quantised matrices dequantised as integer × float32(1 / quant_mult)."""
        if self.quantized:
            values = self.integers().astype(np.float32) * self.dequantization_scale()
            return values.reshape(self.shape)
        if self.type not in ("float32", "float16", "float64"):
            raise ConversionError(f"{self.name}: a {self.type} item, not a weight")
        return np.array(self.array, dtype=np.float32).reshape(self.shape)

    def _require_quantized(self) -> None:
        if not self.quantized:
            raise ConversionError(f"{self.name}: a {self.type} item, not an intgemm matrix")


@dataclass(frozen=True)
class MarianModelFile:
    """A Marian model file's items (`special:model.yml` aside) and its embedded config."""

    path: Path
    format: str  # "npz" or "bin"
    tensors: Mapping[str, MarianTensor]
    config: Mapping[str, Any]  # special:model.yml typed by parse_model_config
    config_text: str = field(repr=False)


def read_marian_model(path: str | Path) -> MarianModelFile:
    """Reads a Marian `.npz` or `.bin` model file (a file named .npz, or any zip, is read as
    `.npz`). ConversionError naming the file and the problem when it is malformed or has no
    `special:model.yml`."""
    path = Path(path)
    kind = "npz" if path.suffix == ".npz" or _is_zip(path) else "bin"
    tensors = read_marian_npz(path) if kind == "npz" else read_marian_bin(path)
    item = tensors.pop(CONFIG_ITEM, None)
    if item is None:
        raise ConversionError(f"{path}: no '{CONFIG_ITEM}' item (the model's configuration); "
                              "Marian writes it into every model file it saves")
    text = config_text(item, path)
    return MarianModelFile(path, kind, tensors, parse_model_config(text, f"{path}: {CONFIG_ITEM}"),
                           text)


def is_marian_bin(path: str | Path) -> bool:
    """Whether `path` starts like a Marian binary model (version 1 and a plausible item
    count). Cheap: reads 48 bytes."""
    try:
        with open(path, "rb") as file:
            head = file.read(48)
            size = file.seek(0, 2)
    except OSError:
        return False
    if len(head) < 48:
        return False
    version, count = struct.unpack_from("<2Q", head)
    name_length, type_code, rank, _ = _HEADER.unpack_from(head, 16)
    return (version == BINARY_VERSION and 0 < count <= (size - 16) // _HEADER.size
            and 1 < name_length <= _MAX_NAME and (type_code in _TYPES or type_code in _PACKED_TYPES)
            and rank <= _MAX_RANK)


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"PK\x03\x04"
    except OSError as error:
        raise ConversionError(f"{path}: cannot read: {error.strerror or error}") from None


# ---------------------------------------------------------------------------------------------
# .bin


def read_marian_bin(path: str | Path) -> dict[str, MarianTensor]:
    """The items of a Marian binary model file (`special:model.yml` included), by name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConversionError(f"{path}: cannot read: {error.strerror or error}") from None
    return _BinReader(path, data).items()


class _BinReader:
    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.data = data
        self.position = 0

    def fail(self, message: str) -> ConversionError:
        return ConversionError(f"{self.path}: not a valid Marian binary model: {message}")

    def take(self, size: int, what: str) -> int:
        """Reserves `size` bytes at the current position; returns where they start."""
        start = self.position
        if size > len(self.data) - start:
            raise self.fail(f"the file ends inside {what} (needs {size} bytes at offset "
                            f"{start}, the file is {len(self.data)} bytes)")
        self.position = start + size
        return start

    def u64(self, what: str) -> int:
        return struct.unpack_from("<Q", self.data, self.take(8, what))[0]

    def items(self) -> dict[str, MarianTensor]:
        version = self.u64("the version")
        if version != BINARY_VERSION:
            raise self.fail(f"binary format version {version}, only {BINARY_VERSION} exists")
        count = self.u64("the item count")
        if count == 0 or count > (len(self.data) - self.position) // _HEADER.size:
            raise self.fail(f"{count} items cannot fit in {len(self.data)} bytes")
        start = self.take(count * _HEADER.size, "the item headers")
        headers = [_HEADER.unpack_from(self.data, start + i * _HEADER.size) for i in range(count)]

        names = []
        for index, (name_length, _, _, _) in enumerate(headers):
            if not 2 <= name_length <= _MAX_NAME:
                raise self.fail(f"item {index}: name length {name_length} (2..{_MAX_NAME} with "
                                "its NUL)")
            raw = self.data[self.take(name_length, f"the name of item {index}"):self.position]
            if raw[-1] != 0 or 0 in raw[:-1]:
                raise self.fail(f"item {index}: its name is not one NUL-terminated string")
            try:
                names.append(raw[:-1].decode("utf-8"))
            except UnicodeDecodeError:
                raise self.fail(f"item {index}: its name is not UTF-8") from None
        if len(set(names)) != len(names):
            duplicate = next(name for name in names if names.count(name) > 1)
            raise self.fail(f"item '{duplicate}' appears twice")

        shapes = []
        for name, (_, _, rank, _) in zip(names, headers):
            if not 1 <= rank <= _MAX_RANK:
                raise self.fail(f"item '{name}': rank {rank} (1..{_MAX_RANK})")
            dims = struct.unpack_from(f"<{rank}i", self.data,
                                      self.take(4 * rank, f"the shape of '{name}'"))
            if any(dim <= 0 for dim in dims):
                raise self.fail(f"item '{name}': shape {list(dims)} has a dimension below 1")
            shapes.append(tuple(dims))

        padding = self.u64("the padding length")
        self.take(padding, "the padding before the data")

        items: dict[str, MarianTensor] = {}
        for name, (_, type_code, _, size), shape in zip(names, headers, shapes):
            start = self.take(size, f"the data of '{name}'")
            items[name] = self.item(name, type_code, shape, start, size)
        if self.position != len(self.data):
            raise self.fail(f"{len(self.data) - self.position} bytes follow the last item")
        return items

    def item(self, name: str, type_code: int, shape: tuple[int, ...], start: int,
             size: int) -> MarianTensor:
        if type_code in _PACKED_TYPES:
            raise self.fail(f"item '{name}' is a {_PACKED_TYPES[type_code]} matrix (FBGEMM's "
                            "layout for one CPU family), which cannot be read back; convert "
                            "the model to float32 with marian-conv first")
        if type_code not in _TYPES:
            raise self.fail(f"item '{name}' has type code {type_code:#x}, not one of Marian's")
        type_name, dtype = _TYPES[type_code]
        elements = math.prod(shape)
        element_bytes = np.dtype(dtype).itemsize
        quantized = type_name in QUANTIZED_TYPES
        needed = elements * element_bytes + (4 if quantized else 0)
        if size < needed:
            raise self.fail(f"item '{name}' ({type_name} {list(shape)}) needs {needed} bytes, "
                            f"it has {size}")
        values = np.frombuffer(self.data, dtype=dtype, count=elements, offset=start)
        if not quantized:
            return MarianTensor(name, type_name, shape, values.reshape(shape))
        quant_mult = struct.unpack_from("<f", self.data, start + elements * element_bytes)[0]
        if not (math.isfinite(quant_mult) and quant_mult > 0):
            raise self.fail(f"item '{name}': quantisation multiplier {quant_mult} (finite and "
                            "positive)")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        transposed = "Wemb" not in name  # Marian's own rule (binary.cpp)
        layout = (cols, rows) if transposed else (rows, cols)
        return MarianTensor(name, type_name, shape, values.reshape(layout), quant_mult,
                            transposed)


# ---------------------------------------------------------------------------------------------
# .npz

# What a damaged zip or .npy header can raise from zipfile, zlib and numpy.lib.format.
_NPZ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
               ValueError, NotImplementedError, RuntimeError, KeyError, struct.error,
               OverflowError, TypeError, SyntaxError, UnicodeDecodeError)


def read_marian_npz(path: str | Path) -> dict[str, MarianTensor]:
    """The arrays of a Marian `.npz` model (`special:model.yml` included) as float32 items of
    Marian's shapes ([1, n] for 1-D arrays); the config item keeps its bytes (uint8)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return _npz_items(path, archive)
    except ConversionError:
        raise
    except _NPZ_ERRORS as error:
        raise ConversionError(f"{path}: not a valid .npz file: {error}") from None


def _npz_items(path: Path, archive: zipfile.ZipFile) -> dict[str, MarianTensor]:
    items: dict[str, MarianTensor] = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ConversionError(f"{path}: member '{info.filename}' is not a .npy array")
        name = info.filename[:-len(".npy")]
        if name in items:
            raise ConversionError(f"{path}: array '{name}' appears twice")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ConversionError(f"{path}: array '{name}' has .npy version {version}")
            if dtype.hasobject or dtype.itemsize == 0:
                raise ConversionError(f"{path}: array '{name}' has dtype {dtype}")
            if any(dim < 0 for dim in shape) or len(shape) > _MAX_RANK:
                raise ConversionError(f"{path}: array '{name}' has shape {shape}")
            count = math.prod(shape)
            size = count * dtype.itemsize
            available = info.file_size - member.tell()
            if size != available:
                raise ConversionError(f"{path}: array '{name}' of shape {shape} and dtype {dtype}"
                                      f" needs {size} bytes, the member holds {available}")
            raw = member.read(size)
            if len(raw) != size:
                raise ConversionError(f"{path}: array '{name}' is truncated")
        values = np.frombuffer(raw, dtype=dtype, count=count)
        values = values.reshape(shape, order="F" if fortran_order else "C")
        items[name] = _npz_item(path, name, values)
    return items


def _npz_item(path: Path, name: str, values: np.ndarray) -> MarianTensor:
    if name == CONFIG_ITEM:
        if values.dtype.kind not in "iuS" or values.dtype.itemsize != 1 or values.ndim > 1:
            raise ConversionError(f"{path}: '{CONFIG_ITEM}' is a {values.dtype} array of shape "
                                  f"{values.shape}, not the bytes of a YAML text")
        raw = values.reshape(-1).view(np.uint8)
        return MarianTensor(name, "uint8", (raw.size,), raw)
    if values.dtype.kind != "f" or values.dtype.itemsize != 4:
        raise ConversionError(f"{path}: array '{name}' is {values.dtype}; Marian reads every "
                              ".npz array as float32")
    if values.ndim == 0 or values.size == 0:
        raise ConversionError(f"{path}: array '{name}' has shape {values.shape}")
    shape = (1, values.shape[0]) if values.ndim == 1 else tuple(values.shape)
    return MarianTensor(name, "float32", shape, values.astype("<f4", copy=False).reshape(shape))


# ---------------------------------------------------------------------------------------------
# special:model.yml

# The model options Marian's transformer reads (src/common/config_parser.cpp,
# src/models/transformer.h), with Marian's defaults for options a file does not record.
_BOOL = "bool"
_INT = "int"
_FLOAT = "float"
_STR = "str"
_INTS = "ints"
_STRS = "strs"
MODEL_OPTIONS: dict[str, tuple[str, Any]] = {
    "type": (_STR, "amun"),
    "dim-emb": (_INT, 512),
    "dim-vocabs": (_INTS, [0, 0]),
    "enc-depth": (_INT, 1),
    "dec-depth": (_INT, 1),
    "enc-cell": (_STR, "gru"),
    "dec-cell": (_STR, "gru"),
    "dim-rnn": (_INT, 1024),
    "layer-normalization": (_BOOL, False),
    "right-left": (_BOOL, False),
    "skip": (_BOOL, False),
    "tied-embeddings": (_BOOL, False),
    "tied-embeddings-src": (_BOOL, False),
    "tied-embeddings-all": (_BOOL, False),
    "output-omit-bias": (_BOOL, False),
    "transformer-heads": (_INT, 8),
    "transformer-no-projection": (_BOOL, False),
    "transformer-rnn-projection": (_BOOL, False),
    "transformer-pool": (_BOOL, False),
    "transformer-dim-ffn": (_INT, 2048),
    "transformer-decoder-dim-ffn": (_INT, 0),
    "transformer-ffn-depth": (_INT, 2),
    "transformer-decoder-ffn-depth": (_INT, 0),
    "transformer-ffn-activation": (_STR, "swish"),
    "transformer-dim-aan": (_INT, 2048),
    "transformer-aan-depth": (_INT, 2),
    "transformer-aan-activation": (_STR, "swish"),
    "transformer-aan-nogate": (_BOOL, False),
    "transformer-decoder-autoreg": (_STR, "self-attention"),
    "transformer-tied-layers": (_INTS, []),
    "transformer-preprocess": (_STR, ""),
    "transformer-postprocess-emb": (_STR, "d"),
    "transformer-postprocess": (_STR, "dan"),
    "transformer-postprocess-top": (_STR, ""),
    "transformer-train-position-embeddings": (_BOOL, False),
    "transformer-disable-position-embeddings": (_BOOL, False),
    "transformer-attention-mask": (_STR, "default"),
    "transformer-depth-scaling": (_BOOL, False),
    "ulr": (_BOOL, False),
    "lemma-dim-emb": (_INT, 0),
    "factors-combine": (_STR, "sum"),
    "input-types": (_STRS, []),
    "max-length": (_INT, 50),
    "version": (_STR, ""),
}
# The decoding options of a decoder.yml / config*.yml that pick outputs.
DECODER_OPTIONS: dict[str, tuple[str, Any]] = {
    "beam-size": (_INT, 12),
    "normalize": (_FLOAT, 0.0),
    "word-penalty": (_FLOAT, 0.0),
    "max-length-factor": (_FLOAT, 3.0),
    "max-length": (_INT, 1000),
    "allow-unk": (_BOOL, False),
    "n-best": (_BOOL, False),
    "relative-paths": (_BOOL, False),
    "models": (_STRS, []),
    "vocabs": (_STRS, []),
    "shortlist": (_STRS, []),
    "gemm-precision": (_STR, "float32"),
}
# yaml-cpp's spellings of booleans (what Marian's `as<bool>()` accepts).
_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}


def config_text(item: MarianTensor, path: Path) -> str:
    """The YAML text of a `special:model.yml` item: its bytes up to the first NUL, UTF-8."""
    if item.quantized or item.array.dtype.itemsize != 1:
        raise ConversionError(f"{path}: '{CONFIG_ITEM}' is a {item.type} item, not text")
    raw = item.array.reshape(-1).tobytes().split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConversionError(f"{path}: '{CONFIG_ITEM}' is not UTF-8 text") from None


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """A YAML mapping with every scalar kept as a string (PyYAML's BaseLoader, as Marian's
    yaml-cpp leaves typing to the reader). ConversionError naming `source` otherwise."""
    import yaml

    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    try:
        value = yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        raise ConversionError(f"{source}: not valid YAML: {error}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConversionError(f"{source}: not a YAML mapping")
    return value


def parse_model_config(text: str, source: str) -> dict[str, Any]:
    """special:model.yml as a dict of Marian option -> value: every option of the text, the
    ones in MODEL_OPTIONS typed (int, float, bool, str, lists) and present with Marian's
    default when absent; other options kept as YAML strings."""
    return typed_options(parse_yaml(text, source), MODEL_OPTIONS, source)


def typed_options(raw: Mapping[str, Any], schema: Mapping[str, tuple[str, Any]],
                  source: str) -> dict[str, Any]:
    """`raw` (strings from parse_yaml) with the options of `schema` typed, defaults filled."""
    options: dict[str, Any] = dict(raw)
    for key, (kind, default) in schema.items():
        if key not in raw:
            options[key] = list(default) if isinstance(default, list) else default
            continue
        options[key] = _typed(raw[key], kind, key, source)
    return options


def _typed(value: Any, kind: str, key: str, source: str) -> Any:
    def bad() -> ConversionError:
        return ConversionError(f"{source}: {key} is {value!r}, not a{'n' if kind == _INT else ''}"
                               f" {_KIND_NAMES[kind]}")

    if kind in (_INTS, _STRS):
        if value == "" or value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise bad()
        if kind == _STRS:
            return list(items)
        return [_scalar(item, _INT, bad) for item in items]
    if not isinstance(value, str):
        raise bad()
    return _scalar(value, kind, bad)


def _scalar(value: str, kind: str, bad) -> Any:
    if kind == _STR:
        return value
    if kind == _BOOL:
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise bad()
    try:
        number = int(value, 10) if kind == _INT else float(value)
    except ValueError:
        raise bad() from None
    if kind == _FLOAT and not math.isfinite(number):
        raise bad()
    return number


_KIND_NAMES = {_BOOL: "boolean", _INT: "integer", _FLOAT: "number", _STR: "string",
               _INTS: "list of integers", _STRS: "list of strings"}
