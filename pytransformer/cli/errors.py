"""Turning failures into one-line messages: the CLI never shows a traceback unless --debug."""

from __future__ import annotations

import functools
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.markup import escape

import pytransformer

from pytransformer.cli.console import stderr_console

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the user can fix, with the message to show them."""


_debug = False


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled or os.environ.get("PYTRANSFORMER_DEBUG", "") not in ("", "0")


def debug_enabled() -> bool:
    return _debug


def describe_error(error: BaseException) -> str:
    """A one-line description of an exception for the user."""
    if isinstance(error, CliError):
        return str(error)
    if isinstance(error, UnicodeDecodeError):
        return f"input is not valid UTF-8 ({error.reason} at byte {error.start})"
    if isinstance(error, FileNotFoundError):
        name = error.filename or str(error)
        return f"no such file: {name}"
    if isinstance(error, IsADirectoryError):
        return f"is a directory: {error.filename}"
    if isinstance(error, PermissionError):
        return f"permission denied: {error.filename}"
    if isinstance(error, MemoryError):
        return "out of memory"
    name = type(error).__name__
    message = " ".join(str(error).split())  # one line, whatever the exception held
    if isinstance(error, pytransformer.ModelFormatError):
        return f"invalid model file: {message}"
    if isinstance(error, pytransformer.ConversionError):
        return f"cannot convert: {message}"
    if name in ("ValueError", "RuntimeError", "OSError", "Exception"):
        return message or name
    return f"{name}: {message}" if message else name


def print_error(error: BaseException) -> None:
    if _debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    stderr_console().print(f"[bold red]error:[/] {escape(describe_error(error))}",
                           highlight=False, soft_wrap=True)


def reports_errors(command: F) -> F:
    """Decorates a command: any exception becomes a one-line message and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            stderr_console().print("[yellow]interrupted[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            # The reader of our stdout went away (`| head`): stop quietly like other tools.
            _silence_stdout()
            raise typer.Exit(EXIT_FAILURE) from None
        except Exception as error:  # noqa: BLE001 - the point is to catch everything
            print_error(error)
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings (e.g. an input truncated to the model's limit) as one line on stderr."""
    text = " ".join(str(message).split())
    stderr_console().print(f"[yellow]warning:[/] {escape(text)}", highlight=False,
                           soft_wrap=True)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
