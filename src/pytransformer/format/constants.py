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


DTYPE_SIZES = {DType.F32: 4, DType.F16: 2, DType.BF16: 2, DType.INT8: 1}

# write_model(quantize=...) -> the dtype of the quantized matrices.
# "int8" stores the matrices of pytransformer.format.quantize.int8_policy_keeps_int8 as int8 and
# the others as f16; "int8_all" stores every matrix as int8.
QUANTIZE_DTYPES = {None: DType.F32, "f16": DType.F16, "bf16": DType.BF16, "int8": DType.INT8,
                   "int8_all": DType.INT8}
