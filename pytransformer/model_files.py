"""Finding and describing model files without loading a model.

default_model_path(): the model Translator(None) loads — the file named by the environment
variable PYTRANSFORMER_MODEL when it is set, else the model installed with the package
(pytransformer/weights/model.ptm), else None.

describe_model(path): what a file holds (languages, sizes, architecture, tensor types), read
from its metadata and tensor directory only. The file is validated as for loading, except for
the tensors' checksums: no weights are read (only int8 scales, to check them), so it costs
milliseconds whatever the model's size.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytransformer import _core

MODEL_ENVIRONMENT_VARIABLE = "PYTRANSFORMER_MODEL"
# The model the package ships: repo-root weights/model.ptm, installed into the package.
PACKAGED_MODEL_PATH = Path(__file__).resolve().parent / "weights" / "model.ptm"


def default_model_path() -> Path | None:
    """The default model's file: $PYTRANSFORMER_MODEL when set (returned even if the file is
    missing, so that the error names it), else the packaged model when it is installed, else
    None."""
    named = os.environ.get(MODEL_ENVIRONMENT_VARIABLE, "").strip()
    if named:
        return Path(named).expanduser()
    return PACKAGED_MODEL_PATH if PACKAGED_MODEL_PATH.is_file() else None


@dataclass(frozen=True)
class ModelInfo:
    """A model file's description (docs/format.md names the metadata behind each field)."""

    path: Path
    size_bytes: int
    format_version: int
    name: str | None              # general.name
    source: str | None            # general.source: where the weights came from
    architecture: str             # general.architecture
    pre_norm: bool
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_heads: int
    decoder_heads: int
    max_positions: int
    source_vocab_size: int
    target_vocab_size: int
    tokenizer: str                # tokenizer.type: "sentencepiece" or "none"
    target_languages: list[str]   # target-language tokens (e.g. ">>zho<<"), [] if none
    tensor_dtypes: dict[str, int]  # dtype name ("f32", "f16", "bf16", "int8") -> tensor count
    metadata: dict[str, Any]      # every metadata key except the embedded tokenizer models


def describe_model(path: str | Path) -> ModelInfo:
    """Describes the model file at `path` without loading its weights.

    Raises FileNotFoundError when there is no such file, ModelFormatError (a ValueError)
    naming the file when it is not a valid model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    model_file = _core.ModelFile(str(path))
    metadata = {key: value for key, value in model_file.metadata.items()
                if not isinstance(value, bytes)}
    return ModelInfo(
        path=path,
        size_bytes=path.stat().st_size,
        format_version=model_file.format_version,
        name=metadata.get("general.name"),
        source=metadata.get("general.source"),
        architecture=metadata["general.architecture"],
        pre_norm=metadata["model.pre_norm"],
        d_model=metadata["model.d_model"],
        encoder_layers=metadata["model.encoder_layers"],
        decoder_layers=metadata["model.decoder_layers"],
        encoder_heads=metadata["model.encoder_heads"],
        decoder_heads=metadata["model.decoder_heads"],
        max_positions=metadata["model.max_positions"],
        source_vocab_size=metadata["model.source_vocab_size"],
        target_vocab_size=metadata["model.target_vocab_size"],
        tokenizer=metadata["tokenizer.type"],
        target_languages=list(metadata.get("tokenizer.target_languages", [])),
        tensor_dtypes=tensor_dtypes(model_file),
        metadata=metadata,
    )


def tensor_dtypes(model_file: _core.ModelFile) -> dict[str, int]:
    """dtype name -> number of tensors stored with it (tied tensors stored once count once per
    name; an int8 matrix's per-row scales are f32 tensors of their own)."""
    counts = Counter(model_file.tensor_info(name)[0] for name in model_file.tensor_names())
    return dict(sorted(counts.items()))
