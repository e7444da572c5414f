"""Where the CLI finds models: `--model PATH`, a name in the user's models directory, or the
default model ($PYTRANSFORMER_MODEL, else the one installed with the package); and the user's
data directory (models, REPL history)."""

from __future__ import annotations

import os
from pathlib import Path

import pytransformer
from pytransformer.cli.errors import CliError

MODEL_SUFFIX = ".ptm"
# Names the default model (read by pytransformer.default_model_path() as well).
DEFAULT_MODEL_VARIABLE = "PYTRANSFORMER_MODEL"


def data_dir() -> Path:
    """$XDG_DATA_HOME/pytransformer (default ~/.local/share/pytransformer)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "pytransformer"


def user_models_dir() -> Path:
    return data_dir() / "models"


def history_file() -> Path:
    return data_dir() / "history"


def user_models() -> list[Path]:
    directory = user_models_dir()
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir()
                  if path.suffix == MODEL_SUFFIX and path.is_file())


def looks_convertible(directory: Path) -> bool:
    """A Marian / CTranslate2 / argos-translate directory that `convert` can turn into a model."""
    return any((directory / name).exists() for name in
               ("config.json", "model.bin", "metadata.json", "model"))


def resolve_model(spec: str) -> Path:
    """The model file for --model: a path, or a name (with or without .ptm) in the user's
    models directory. Raises CliError for anything else."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        hint = (f"; convert it first: pytransformer convert {spec} OUTPUT{MODEL_SUFFIX}"
                if looks_convertible(path) else "")
        raise CliError(f"model {spec} is a directory, not a model file{hint}")
    if os.sep not in spec:
        for candidate in (user_models_dir() / spec, user_models_dir() / (spec + MODEL_SUFFIX)):
            if candidate.is_file():
                return candidate
    raise CliError(f"unknown model '{spec}': no such file, and no model of that name in "
                   f"{user_models_dir()} (`pytransformer models` lists the models found)")


def default_model() -> Path | None:
    """The default model's file: $PYTRANSFORMER_MODEL (a path, or a name as for --model), else
    the model installed with the package; None when there is neither. CliError when the variable
    names no model."""
    named = os.environ.get(DEFAULT_MODEL_VARIABLE, "").strip()
    if named:
        try:
            return resolve_model(named)
        except CliError as error:
            raise CliError(f"${DEFAULT_MODEL_VARIABLE}: {error}") from None
    return pytransformer.default_model_path()


def default_model_path() -> Path:
    """The default model's file; CliError when there is none."""
    path = default_model()
    if path is None:
        raise CliError("the default model is not installed; pass --model PATH or set "
                       f"${DEFAULT_MODEL_VARIABLE} (`pytransformer models` lists the models "
                       "found)")
    return path
