"""On-disk constants of the model file format, version 1 (docs/format.md), in one place."""

from enum import IntEnum

MAGIC = b"PYTRFMR\x00"
FORMAT_VERSION = 1
HEADER_SIZE = 64
ALIGNMENT = 64  # data offset and every tensor offset are multiples of this
MAX_NAME_LENGTH = 256  # metadata keys and tensor names: 1..256 bytes
MAX_RANK = 4
# int64 array: the CRC-32 (zlib.crc32) of each tensor entry's bytes, in directory order. Written
# by write_model, checked by the reader, never part of ModelFile.metadata.
CHECKSUM_KEY = "checksum.crc32"


class ValueType(IntEnum):
    """Metadata value type codes."""

    BOOL = 1
    INT64 = 2
    FLOAT64 = 3
    STRING = 4
    BYTES = 5
    INT64_ARRAY = 6
    STRING_ARRAY = 7
    FLOAT64_ARRAY = 8


class DType(IntEnum):
    """Tensor element type codes."""

    F32 = 0
    F16 = 1
    BF16 = 2
    INT8 = 3
    Q8_0 = 4
    Q4_1 = 5


# The dtype names of ModelFile.tensor_info.
DTYPE_NAMES = {DType.F32: "f32", DType.F16: "f16", DType.BF16: "bf16", DType.INT8: "int8",
               DType.Q8_0: "q8_0", DType.Q4_1: "q4_1"}
# Bytes per element of the element dtypes.
DTYPE_SIZES = {DType.F32: 4, DType.F16: 2, DType.BF16: 2, DType.INT8: 1}
# The block dtypes (ggml's Q8_0 and Q4_1): a row of a [rows, cols] matrix is cols / BLOCK_VALUES
# blocks of BLOCK_BYTES[dtype] bytes; cols must be a multiple of BLOCK_VALUES.
BLOCK_VALUES = 32
BLOCK_BYTES = {DType.Q8_0: 34, DType.Q4_1: 20}

# write_model(quantize=...) -> the dtype of the quantized matrices.
# "int8" stores the matrices of pytransformer.format.quantize.int8_policy_keeps_int8 as int8 and
# the others as f16; "int8_all" stores every matrix as int8; "q8_0" and "q4_1" store every
# matrix whose cols are a multiple of BLOCK_VALUES in blocks, the others as f16.
QUANTIZE_DTYPES = {None: DType.F32, "f16": DType.F16, "bf16": DType.BF16, "int8": DType.INT8,
                   "int8_all": DType.INT8, "q8_0": DType.Q8_0, "q4_1": DType.Q4_1}


def stored_bytes(dtype: DType | str, shape: tuple[int, ...]) -> int:
    """Bytes a tensor of `dtype` (a DType or its name, "q4_1") and `shape` takes in the data
    section: elements x element size, or rows x cols / BLOCK_VALUES x block bytes. ValueError
    for a block dtype whose shape is not [rows, cols] with cols a multiple of BLOCK_VALUES."""
    if isinstance(dtype, str):
        names = {name: code for code, name in DTYPE_NAMES.items()}
        if dtype not in names:
            raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(names)})")
        dtype = names[dtype]
    dtype = DType(dtype)
    if dtype in BLOCK_BYTES:
        if len(shape) != 2 or shape[1] % BLOCK_VALUES:
            raise ValueError(f"a {DTYPE_NAMES[dtype]} tensor is a [rows, cols] matrix with cols "
                             f"a multiple of {BLOCK_VALUES}, not {list(shape)}")
        return shape[0] * (shape[1] // BLOCK_VALUES) * BLOCK_BYTES[dtype]
    count = 1
    for dimension in shape:
        count *= dimension
    return count * DTYPE_SIZES[dtype]
