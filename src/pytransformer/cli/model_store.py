"""Where the CLI finds models and keeps its data: --model and the default model as
pytransformer.resolve_model and pytransformer.default_model_path name them (the Python API's
rule), with their errors as CLI errors; and the REPL history file."""

from __future__ import annotations

from pathlib import Path

import pytransformer
from pytransformer.cli.errors import CliError
from pytransformer.model_files import (MODEL_ENVIRONMENT_VARIABLE, ModelNotFoundError,
                                       converted_gguf, data_dir, gguf_cache_dir, is_gguf,
                                       resolve_model)


def history_file() -> Path:
    return data_dir() / "history"


def model_for_option(spec: str) -> Path:
    """The model file --model names (a path, or a name in the user models directory); a GGUF
    file is converted once into the cache (model_files.converted_gguf, at its default
    precision), a spinner on stderr while it is."""
    try:
        path = resolve_model(spec)
    except ModelNotFoundError as error:
        raise CliError(str(error)) from None
    if not is_gguf(path):
        return path
    from rich.markup import escape

    from pytransformer.cli.console import stderr_console
    from pytransformer.convert import ConversionError

    try:
        with stderr_console().status(escape(f"converting {path} (once: kept in "
                                            f"{gguf_cache_dir()})")):
            converted, _fresh = converted_gguf(path)
    except ConversionError as error:
        raise CliError(f"cannot use {path}: {error}") from None
    return converted


def default_model() -> Path | None:
    """The default model's file, None when there is none; CliError when $PYTRANSFORMER_MODEL
    names no model."""
    try:
        return pytransformer.default_model_path()
    except ModelNotFoundError as error:
        raise CliError(str(error)) from None


def default_model_path() -> Path:
    """The default model's file; CliError when there is none."""
    path = default_model()
    if path is None:
        raise CliError("the default model is not installed; pass --model PATH or set "
                       f"${MODEL_ENVIRONMENT_VARIABLE} (`pytransformer models` lists the models "
                       "found)")
    return path
