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

import pytransformer

from pytransformer.cli.console import stderr_console

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class CliError(Exception):
    """A failure the user can fix, with the message to show them."""


class OutputError(CliError):
    """The output cannot be written: names the user's path (or stdout), never a temporary file
    or an errno."""

    def __init__(self, name: str, reason: str, on_stdout: bool = False) -> None:
        super().__init__(f"cannot write {name}: {reason}")
        self.on_stdout = on_stdout


class Terminated(BaseException):
    """Raised by the SIGTERM handler. Not a KeyboardInterrupt: chat's Ctrl-C handling (stop the
    translation, keep the session) must not catch it; `finally` blocks still run."""


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
    convert = sys.modules.get("pytransformer.convert")  # not loaded: not a conversion error
    if convert is not None and isinstance(error, convert.ConversionError):
        return f"cannot convert: {message}"
    if name in ("ValueError", "RuntimeError", "OSError", "Exception"):
        return message or name
    return f"{name}: {message}" if message else name


def print_error(error: BaseException) -> None:
    from rich.markup import escape  # (imported when there is an error to print)

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
        except Terminated:
            stderr_console().print("[yellow]terminated[/]")
            raise typer.Exit(EXIT_TERMINATED) from None
        except BrokenPipeError:
            # The reader of our stdout went away (`| head`): stop quietly like other tools.
            _silence_stdout()
            raise typer.Exit(EXIT_FAILURE) from None
        except Exception as error:  # noqa: BLE001 - the point is to catch everything
            print_error(error)
            if isinstance(error, OutputError) and error.on_stdout:
                _silence_stdout()  # or the interpreter's final flush fails the same way again
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def print_warning(message: str) -> None:
    """One line on stderr starting with `warning:`."""
    from rich.markup import escape

    text = " ".join(message.split())
    stderr_console().print(f"[yellow]warning:[/] {escape(text)}", highlight=False,
                           soft_wrap=True)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings (e.g. an input truncated to the model's limit) as one line on stderr."""
    print_warning(str(message))


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# ---- usage errors (raised by the argument parser) -------------------------------------------

# The validator's wording for a value outside an option's range, and ours.
_BOUNDS = [
    ("Input should be greater than or equal to ", "must be at least "),
    ("Input should be less than or equal to ", "must be at most "),
    ("Input should be greater than ", "must be greater than "),
    ("Input should be less than ", "must be less than "),
]


def _parameter_name(parameter: Any) -> str:
    """An option as its long name (`--quantize`), an argument as its metavar (`TEXT`)."""
    options = list(getattr(parameter, "opts", []) or [])
    if getattr(parameter, "param_type_name", "") == "option" and options:
        return next((name for name in options if name.startswith("--")), options[0])
    return str(getattr(parameter, "metavar", None) or parameter.name or "").upper()


def _given_value(error: BaseException) -> str | None:
    """The text the user gave, when the validator kept it (pydantic's error 'input')."""
    cause = error.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        try:
            found = errors()
        except Exception:  # noqa: BLE001 - only a nicer message is at stake
            return None
        if found and "input" in found[0]:
            return str(found[0]["input"])
    return None


def _plain_validation_message(message: str, value: str | None) -> str:
    message = " ".join(message.split()).removeprefix("Value error, ").rstrip(".")
    got = f" (got {value})" if value is not None else ""
    for theirs, ours in _BOUNDS:
        if message.startswith(theirs):
            return ours + message[len(theirs):] + got
    if message.startswith("Input should be a valid integer"):
        return f"'{value}' is not a whole number" if value is not None else "not a whole number"
    if message.startswith("Input should be a valid number"):
        return f"'{value}' is not a number" if value is not None else "not a number"
    if message.startswith("Input should be "):
        return "must be " + message[len("Input should be "):] + got
    head, separator, choices = message.partition(" is not one of ")
    if separator:  # "'int4' is not one of 'int8', 'f16'" -> "... one of int8, f16"
        names = [choice.strip().strip("'") for choice in choices.split(",")]
        return f"{head}{separator}{', '.join(names)}"
    return message


def describe_usage_error(error: Exception) -> str:
    """A usage error of the argument parser (Typer's BadParameter, NoSuchOption, ...) as one
    line: `--quantize: 'int4' is not one of int8, int8_all, f16, bf16`."""
    parameter = getattr(error, "param", None)
    if isinstance(error, typer.BadParameter) and parameter is not None and \
            type(error).__name__ != "MissingParameter":
        message = _plain_validation_message(str(getattr(error, "message", error)),
                                            _given_value(error))
        return f"{_parameter_name(parameter)}: {message}"
    option = getattr(error, "option_name", None)
    if type(error).__name__ == "NoSuchOption" and option:  # with the close matches it found
        possibilities = sorted(getattr(error, "possibilities", None) or [])
        text = f"no such option {option}"
        if possibilities:
            text += f"; did you mean {' or '.join(possibilities)}?"
    else:
        text = " ".join(error.format_message().split()).rstrip(".")  # type: ignore[attr-defined]
        text = text[:1].lower() + text[1:]
    context = getattr(error, "ctx", None)
    if context is not None:
        text += f" (see '{context.command_path} --help')"
    return text


def print_usage_error(error: Exception) -> None:
    from rich.markup import escape

    stderr_console().print(f"[bold red]error:[/] {escape(describe_usage_error(error))}",
                           highlight=False, soft_wrap=True)
