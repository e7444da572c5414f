"""The `pytransformer` Typer app: global options and the command table."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import typer
from typer.core import TyperGroup

from pytransformer.cli.bench_command import bench_command
from pytransformer.cli.chat_command import chat
from pytransformer.cli.convert_command import convert
from pytransformer.cli.errors import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED,
                                     Terminated, print_usage_error, set_debug)
from pytransformer.cli.explain_command import explain
from pytransformer.cli.generate_command import generate
from pytransformer.cli.info_commands import info, models
from pytransformer.cli.score_command import score
from pytransformer.cli.shortlist_command import shortlist
from pytransformer.cli.translate_command import translate



def _show_flags_plainly(command: Any, context: Any) -> None:
    """Boolean flags (`--json`, `--help`) take no value: their help shows no `<bool>` type."""
    help_option = command.get_help_option(context)
    for parameter in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(parameter, "is_flag", False):
            parameter.metavar = ""


class CliGroup(TyperGroup):
    """The command group: usage errors as one line (`error: --beam: must be at least 1 (got
    0)`, exit status 2) instead of a usage box; flags shown without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        _show_flags_plainly(self, ctx)
        return super().get_params(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _show_flags_plainly(command, ctx)
        return command

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            # Not standalone: parser errors come back here instead of being drawn as a box.
            status = super().main(args, prog_name, complete_var, False, **extra)
        except typer.Abort:
            sys.exit(EXIT_FAILURE)
        except typer.TyperException as error:  # a usage error: bad value, unknown option...
            if type(error).__name__ != "NoArgsIsHelpError":  # (that one printed the help)
                print_usage_error(error)
            sys.exit(error.exit_code)
        sys.exit(status if isinstance(status, int) else 0)


app = typer.Typer(
    name="pytransformer",
    cls=CliGroup,
    help="Translate text in the terminal with an exact, fast encoder-decoder Transformer; "
    "generate and chat with decoder-only language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version() -> str:
    try:
        return version("pytransformer")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"pytransformer {_version()}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: bool = typer.Option(
        False, "--debug", envvar="PYTRANSFORMER_DEBUG",
        help="Show the full traceback of an error instead of a one-line message."),
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit."),
) -> None:
    set_debug(debug)


app.command()(translate)
app.command()(chat)
app.command()(generate)
app.command()(explain)
app.command()(convert)
app.command()(models)
app.command()(score)
app.command()(shortlist)
app.command()(info)
app.command("bench")(bench_command)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds the stack so `finally` blocks run (no half-written --output file).
    raise Terminated


def _fill_closed_standard_descriptors() -> None:
    """A closed stdin/stdout/stderr (`cmd >&-`) gets /dev/null on its descriptor, so that no
    file opened later takes descriptor 0, 1 or 2. sys.stdout stays None: Python decided that at
    startup, and writing to it is reported as an error (console.stdout_stream)."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != descriptor:
                os.dup2(opened, descriptor)
                os.close(opened)


def main() -> None:
    """Console-script entry point."""
    _fill_closed_standard_descriptors()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(prog_name="pytransformer")
    except KeyboardInterrupt:  # outside any command (e.g. while parsing arguments)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        sys.exit(EXIT_TERMINATED)
