"""The `pytransformer` Typer app: global options and the command table."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from pytransformer.cli.errors import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED,
                                     Terminated, print_usage_error, set_debug)

# The command table, in the order `--help` lists it: name -> (module, function). A command's
# module is imported only when the command is registered, and main() registers only the one
# invoked (all of them for the top-level help or an unknown name), so `translate` does not pay
# for importing the converters, the bench or the chat REPL (issue 17: start-up).
COMMANDS = {
    "translate": ("pytransformer.cli.translate_command", "translate"),
    "chat": ("pytransformer.cli.chat_command", "chat"),
    "generate": ("pytransformer.cli.generate_command", "generate"),
    "explain": ("pytransformer.cli.explain_command", "explain"),
    "convert": ("pytransformer.cli.convert_command", "convert"),
    "models": ("pytransformer.cli.info_commands", "models"),
    "score": ("pytransformer.cli.score_command", "score"),
    "shortlist": ("pytransformer.cli.shortlist_command", "shortlist"),
    "info": ("pytransformer.cli.info_commands", "info"),
    "bench": ("pytransformer.cli.bench_command", "bench_command"),
}
# Options of the group itself that take no value: they may come before the command's name.
_GROUP_FLAGS = ("--debug",)
# translate's options that change which model loads, or how, or where (cli/options.py; --ray
# loads it in the actors): with none of them given, main() prefetches the default model.
_MODEL_OPTIONS = ("--model", "--threads", "--device", "--no-shortlist", "--shortlist", "--ray",
                  "--ray-address")


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


def build_app(commands: Iterable[str] = COMMANDS) -> typer.Typer:
    """The Typer app with the named commands of COMMANDS registered."""
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
    app.callback()(_global_options)
    for name in commands:
        module, function = COMMANDS[name]
        app.command(name)(getattr(importlib.import_module(module), function))
    return app


def _print_version(value: bool) -> None:
    if value:
        from pytransformer import __version__

        typer.echo(f"pytransformer {__version__}")
        raise typer.Exit()


def _global_options(
    debug: bool = typer.Option(
        False, "--debug", envvar="PYTRANSFORMER_DEBUG",
        help="Show the full traceback of an error instead of a one-line message."),
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit."),
) -> None:
    set_debug(debug)


def invoked_commands(arguments: Sequence[str]) -> list[str]:
    """The commands main() registers for these command-line arguments: the one named (after
    any group flags), else all of them (`--help`, `--version`, no arguments, an unknown or
    misspelt name, whose error lists the commands)."""
    for argument in arguments:
        if argument in _GROUP_FLAGS:
            continue
        return [argument] if argument in COMMANDS else list(COMMANDS)
    return list(COMMANDS)


_full_app: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    """`app`: every command registered (what tests and `--help` see), built on first use."""
    global _full_app
    if name == "app":
        if _full_app is None:
            _full_app = build_app()
        return _full_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _prefetch_default_model(arguments: Sequence[str], commands: list[str]) -> None:
    """A `translate` that names no option choosing the model or where it runs will load the
    default model with the default settings: start that now (cli.session.prefetch_translator)."""
    if commands != ["translate"] or any(
            argument.split("=", 1)[0] in _MODEL_OPTIONS or
            (argument.startswith("-") and not argument.startswith("--") and
             any(letter in argument for letter in "mt"))
            for argument in arguments):
        return
    from pytransformer.cli.session import prefetch_translator

    prefetch_translator(None)


def main() -> None:
    """Console-script entry point."""
    _fill_closed_standard_descriptors()
    signal.signal(signal.SIGTERM, _terminate)
    commands = invoked_commands(sys.argv[1:])
    try:
        _prefetch_default_model(sys.argv[1:], commands)
        build_app(commands)(prog_name="pytransformer")
    except KeyboardInterrupt:  # outside any command (e.g. while parsing arguments)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        sys.exit(EXIT_TERMINATED)
