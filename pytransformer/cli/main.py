"""The `pytransformer` Typer app: global options and the command table."""

from __future__ import annotations

import signal
import sys
from importlib.metadata import PackageNotFoundError, version

import typer

from pytransformer.cli.bench_command import bench_command
from pytransformer.cli.chat_command import chat
from pytransformer.cli.convert_command import convert
from pytransformer.cli.errors import set_debug
from pytransformer.cli.explain_command import explain
from pytransformer.cli.info_commands import info, models
from pytransformer.cli.translate_command import translate

app = typer.Typer(
    name="pytransformer",
    help="Translate text in the terminal with an exact, fast encoder-decoder Transformer.",
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
app.command()(explain)
app.command()(convert)
app.command()(models)
app.command()(info)
app.command("bench")(bench_command)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C so `finally` blocks run (no half-written --output file).
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(prog_name="pytransformer")
    except KeyboardInterrupt:  # outside any command (e.g. while parsing arguments)
        sys.exit(130)
