"""The two Rich consoles: stdout carries results only, stderr carries everything else.

Consoles are created on first use, not at import, so they bind to the streams of the running
invocation (Typer's test runner swaps sys.stdout / sys.stderr per call), and Rich is imported
only then: a translation that prints plain lines does not pay for it (issue 17: start-up).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

_consoles: dict[str, tuple[object, "Console"]] = {}


def _console(name: str) -> "Console":
    from rich.console import Console

    stream = sys.stdout if name == "stdout" else sys.stderr
    cached = _consoles.get(name)
    if cached is None or cached[0] is not stream:
        cached = (stream, Console(file=stream, highlight=False, soft_wrap=False))
        _consoles[name] = cached
    return cached[1]


def stdout_stream() -> TextIO:
    """sys.stdout; CliError when it is closed (`cmd >&-` starts Python with sys.stdout None)."""
    if sys.stdout is None:
        from pytransformer.cli.errors import CliError  # (errors.py imports this module)

        raise CliError("stdout is closed: there is nowhere to write the output (redirect it, "
                       "e.g. > out.txt)")
    return sys.stdout


def stdout_console() -> "Console":
    stdout_stream()  # a clear error, not a Console writing to nothing
    return _console("stdout")


def stderr_console() -> "Console":
    return _console("stderr")


def print_json(data: object) -> None:
    """Writes `data` as indented JSON on stdout, untouched by Rich (no wrapping, no colour)."""
    stream = stdout_stream()
    json.dump(data, stream, ensure_ascii=False, indent=2)
    stream.write("\n")
    stream.flush()
