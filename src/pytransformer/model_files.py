"""Finding and describing model files without loading a model.

resolve_model(spec): the one rule by which a model is named, in the Python API, in --model and
in $PYTRANSFORMER_MODEL: a path to a model file, or the name of one (with or without .ptm) in
the user models directory, user_models_dir() ($XDG_DATA_HOME/pytransformer/models).

default_model_path(): the model Translator(None) loads — the model $PYTRANSFORMER_MODEL names
when it is set, else the model installed with the package (pytransformer/weights/model.ptm),
else None.

describe_model(path): what a file holds (languages, sizes, architecture, tensor types), read
from its metadata and tensor directory only. The file is validated as for loading, except for
the tensors' checksums: no weights are read (only int8 scales, to check them), so it costs
milliseconds whatever the model's size.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytransformer import _core

MODEL_ENVIRONMENT_VARIABLE = "PYTRANSFORMER_MODEL"
MODEL_SUFFIX = ".ptm"
# The model the package ships: repo-root weights/model.ptm, installed into the package.
PACKAGED_MODEL_PATH = Path(__file__).resolve().parent / "weights" / "model.ptm"


class ModelNotFoundError(FileNotFoundError):
    """A path or name that names no model file; the message says what was looked for."""


def data_dir() -> Path:
    """$XDG_DATA_HOME/pytransformer (default ~/.local/share/pytransformer)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "pytransformer"


def user_models_dir() -> Path:
    """Where models are found by name (and where `pytransformer convert` writes by default)."""
    return data_dir() / "models"


def user_models() -> list[Path]:
    """The model files in user_models_dir(), sorted."""
    directory = user_models_dir()
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir()
                  if path.suffix == MODEL_SUFFIX and path.is_file())


def _looks_convertible(directory: Path) -> bool:
    """A Marian / CTranslate2 / argos-translate directory that a converter can turn into a
    model."""
    return any((directory / name).exists() for name in
               ("config.json", "model.bin", "metadata.json", "model"))


def resolve_model(spec: str | Path) -> Path:
    """The model file `spec` names: a path to a file, or a name (with or without .ptm) of a
    file in user_models_dir(). Raises ModelNotFoundError for anything else (a directory is
    named as such, with how to convert it when it holds a model of another project)."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        hint = (f"; convert it first: pytransformer convert {text} OUTPUT{MODEL_SUFFIX}"
                if _looks_convertible(path) else "")
        raise ModelNotFoundError(f"model {text} is a directory, not a model file{hint}")
    if os.sep not in text:
        for candidate in (user_models_dir() / text, user_models_dir() / (text + MODEL_SUFFIX)):
            if candidate.is_file():
                return candidate
    raise ModelNotFoundError(f"unknown model '{text}': no such file, and no model of that name "
                             f"in {user_models_dir()} (`pytransformer models` lists the models "
                             "found)")


_GGUF_MAGIC = b"GGUF"


def is_gguf(path: str | Path) -> bool:
    """Whether `path` is a GGUF file (llama.cpp's format), by its magic bytes."""
    try:
        with open(path, "rb") as file:
            return file.read(4) == _GGUF_MAGIC
    except OSError:
        return False


def gguf_cache_dir() -> Path:
    """Where GGUF files given as models are kept converted: $PYTRANSFORMER_CACHE/gguf, else
    $XDG_CACHE_HOME/pytransformer/gguf, else ~/.cache/pytransformer/gguf."""
    root = os.environ.get("PYTRANSFORMER_CACHE")
    if root:
        return Path(root) / "gguf"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "pytransformer" / "gguf"


# What converted_gguf stores: convert_gguf's quantize values, "f32" for None.
GGUF_CACHE_PRECISIONS = ("f32", "f16", "bf16", "int8", "int8_all", "q8_0", "q4_1", "gguf")
# "gguf": the file's Q8_0 / Q4_1 matrices kept as they are (other tensor types f16), computed
# with f32 activations. On SmolLM2-135M-Instruct Q4_1 its greedy answers to 10 chat prompts are
# the float32 conversion's, like f16's (tests/python/test_lm_precision.py; int8 agreed on 1),
# and it generates about 1.5 times as fast as f16, reading 2.8 times fewer bytes per token
# (`pytransformer bench FILE.gguf --threads 1 --precision f16,gguf`, docs/benchmarks.md).
DEFAULT_GGUF_PRECISION = "gguf"


def converted_gguf(path: str | Path, precision: str = DEFAULT_GGUF_PRECISION,
                   ) -> tuple[Path, bool]:
    """The model file of a GGUF file: converted once (convert_gguf) into gguf_cache_dir(),
    named by the file's name, size and modification time (so a changed file converts again)
    and the precision. precision: one of GGUF_CACHE_PRECISIONS, convert_gguf's quantize ("f32":
    float32; "gguf": the file's Q8_0 / Q4_1 matrices kept as they are, the others f16); default
    DEFAULT_GGUF_PRECISION. Returns (that path, whether it was converted now). ValueError for
    an unknown precision, ConversionError when the file cannot be converted."""
    if precision not in GGUF_CACHE_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(GGUF_CACHE_PRECISIONS)}, not "
                         f"{precision!r}")
    path = Path(path).resolve()
    status = path.stat()
    cached = gguf_cache_dir() / (f"{path.stem}-{status.st_size}-{status.st_mtime_ns}-"
                                 f"{precision}{MODEL_SUFFIX}")
    if cached.is_file():
        return cached, False
    from pytransformer.convert import convert_gguf  # the converters load only when needed

    cached.parent.mkdir(parents=True, exist_ok=True)
    convert_gguf(path, cached, quantize=None if precision == "f32" else precision)
    return cached, True


def default_model_path() -> Path | None:
    """The default model's file: the model $PYTRANSFORMER_MODEL names (resolve_model) when the
    variable is set, else the packaged model when it is installed, else None. Raises
    ModelNotFoundError, naming the variable, when the variable names no model."""
    named = os.environ.get(MODEL_ENVIRONMENT_VARIABLE, "").strip()
    if named:
        try:
            return resolve_model(named)
        except ModelNotFoundError as error:
            raise ModelNotFoundError(f"${MODEL_ENVIRONMENT_VARIABLE}: {error}") from None
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
    target_languages: list[str]   # target-language tokens (e.g. ">>zho<<"; an NLLB-200 or
                                  # M2M100 model's codes, "zho_Hans", "__zh__"), [] if none
    tensor_dtypes: dict[str, int]  # dtype name ("f32", "f16", "int8", "q4_1", ...) -> count
    metadata: dict[str, Any]      # every metadata key except the embedded tokenizer models
    # The language codes of a model that reads the source language too (NLLB-200, M2M100).
    source_languages: list[str] = field(default_factory=list)


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
        # A decoder-only language model (architecture llama) has no encoder: its file holds no
        # encoder keys, and it normalises before each block.
        pre_norm=metadata.get("model.pre_norm", True),
        d_model=metadata["model.d_model"],
        encoder_layers=metadata.get("model.encoder_layers", 0),
        decoder_layers=metadata["model.decoder_layers"],
        encoder_heads=metadata.get("model.encoder_heads", 0),
        decoder_heads=metadata["model.decoder_heads"],
        max_positions=metadata["model.max_positions"],
        source_vocab_size=metadata.get("model.source_vocab_size", 0),
        target_vocab_size=metadata["model.target_vocab_size"],
        tokenizer=metadata["tokenizer.type"],
        target_languages=list(metadata.get("tokenizer.target_languages")
                              or metadata.get("tokenizer.language_codes", [])),
        tensor_dtypes=tensor_dtypes(model_file),
        metadata=metadata,
        source_languages=list(metadata.get("tokenizer.language_codes", [])),
    )


def tensor_dtypes(model_file: _core.ModelFile) -> dict[str, int]:
    """dtype name -> number of tensors stored with it (tied tensors stored once count once per
    name; an int8 matrix's per-row scales are f32 tensors of their own)."""
    counts = Counter(model_file.tensor_info(name)[0] for name in model_file.tensor_names())
    return dict(sorted(counts.items()))
