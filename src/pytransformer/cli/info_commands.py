"""`pytransformer models` (the models found) and `pytransformer info` (the machine and the
kernels chosen for it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

import pytransformer
from pytransformer.cli.console import print_json, stdout_console
from pytransformer.cli.errors import CliError, describe_error, reports_errors
from pytransformer.cli.model_store import default_model
from pytransformer.model_files import (MODEL_ENVIRONMENT_VARIABLE, MODEL_SUFFIX, user_models,
                                       user_models_dir)
from pytransformer.cli.views import model_summary, models_table, system_table


def _found_models() -> list[dict[str, Any]]:
    """Summaries of the default model and of every model in the user models directory; a file
    that cannot be read is listed with its error instead of stopping the listing."""
    found = []
    try:
        entries: list[tuple[str, Path | None]] = [("default", default_model())]
    except CliError as error:  # $PYTRANSFORMER_MODEL names no model
        found.append({"path": os.environ.get(MODEL_ENVIRONMENT_VARIABLE, ""), "origin": "default",
                      "error": describe_error(error)})
        entries = []
    entries += [("user", path) for path in user_models()]
    for origin, path in entries:
        if path is None:
            continue
        try:
            summary = model_summary(path)
        except Exception as error:  # noqa: BLE001 - one bad file must not hide the others
            summary = {"path": str(path), "error": describe_error(error)}
        summary["origin"] = origin
        summary["model_option"] = _model_option(path)
        found.append(summary)
    return found


def _model_option(path: Path) -> str | None:
    """What --model/-m accepts for this file by name: its stem, for a model in the user models
    directory; None for one elsewhere (the default model needs no -m; any file can be given by
    its path)."""
    try:
        in_user_dir = path.resolve().parent == user_models_dir().resolve()
    except OSError:
        return None
    return path.stem if in_user_dir and path.suffix == MODEL_SUFFIX else None


@reports_errors
def models(
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the models found: the default one and those in the user models directory."""
    found = _found_models()
    console = stdout_console()
    if as_json:
        print_json({"models_dir": str(user_models_dir()), "models": found})
        return
    console.print(models_table(found))
    console.print(f"user models directory: {user_models_dir()}; pass a model's name to "
                  "--model/-m (the default model needs none)", style="dim", highlight=False,
                  markup=False)


@reports_errors
def info(
    as_json: bool = typer.Option(False, "--json", help="Print the information as JSON."),
) -> None:
    """Show the version, CPU features and kernel path in use, and the models found."""
    system = dict(pytransformer.info())
    found = _found_models()
    console = stdout_console()
    if as_json:
        print_json({"system": system, "models_dir": str(user_models_dir()),
                                 "models": found})
        return
    console.print(system_table(system))
    console.print(models_table(found))
