"""The pytransformer model file (docs/format.md): write_model() and read_model().

The C++ reader (pytransformer._core.ModelFile) is the authority on what a valid file is; the
writer asks it for the expected tensors of a metadata set and never writes a file it would reject.
"""

from pytransformer._core import ModelFormatError
from pytransformer.format.constants import FORMAT_VERSION, MAGIC, DType, ValueType, stored_bytes
from pytransformer.format.quantize import BlockMatrix, Int8Matrix
from pytransformer.format.reader import read_model
from pytransformer.format.writer import (expected_tensors, normalize_metadata, rewrite_metadata,
                                         write_model)

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "BlockMatrix",
    "Int8Matrix",
    "DType",
    "ModelFormatError",
    "ValueType",
    "expected_tensors",
    "normalize_metadata",
    "read_model",
    "rewrite_metadata",
    "stored_bytes",
    "write_model",
]
