"""`pytransformer chat`: the interactive translator (REPL).

Lines are read with the standard library's readline (editing, and history kept across sessions
in the user's data directory); a multi-line paste is read as one input. Translations stream
token by token with a live tokens/s count. Ctrl-C stops the current generation and returns to
the prompt; Ctrl-D (or /quit) leaves.

When stdout is not a terminal (`... | pytransformer chat > out.txt`), stdout receives exactly
one line per input line (a slash command gives none) and everything else goes to stderr: the
replies to slash commands, notes and errors always, the banner and each translation's speed
when stderr is a terminal.
"""

from __future__ import annotations

import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pytransformer.cli.console import stderr_console, stdout_console, stdout_stream
from pytransformer.cli.errors import CliError, print_error, print_warning, reports_errors
from pytransformer.cli.languages import bare
from pytransformer.cli.generate_command import LANGUAGE_MODEL_ARCHITECTURES, architecture
from pytransformer.cli.model_store import default_model, history_file, model_for_option
from pytransformer.cli.options import DEVICE_OPTION, MODEL_OPTION, THREADS_OPTION
from pytransformer.cli.session import Session, Settings, describe_notes
from pytransformer.cli.text import join_two, split_sentences

PROMPT = "› "
HISTORY_LENGTH = 2000
# Lines arriving within this delay after one another belong to one paste.
PASTE_DELAY_SECONDS = 0.05
# The streamed translation is redrawn at most this often (every token on slow models).
REFRESH_SECONDS = 1 / 30

# A language model's sampling defaults (lm_chat.py holds that REPL).
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 40

HELP = [
    ("/to LANG", "translate into LANG ('/to auto': from the text's script)"),
    ("/from LANG", "the source language ('/from auto': detect)"),
    ("/beam N", "beam size (1, the default: greedy, streamed token by token)"),
    ("/max-length N", "maximum generated tokens per sentence"),
    ("/model PATH", "load another model (a file or a name from `pytransformer models`)"),
    ("/stats", "model, settings and speed of this session"),
    ("/help", "this list"),
    ("/quit", "leave (or Ctrl-D)"),
]


@dataclass
class Statistics:
    translations: int = 0
    tokens: int = 0
    seconds: float = 0.0
    last_tokens: int = 0
    last_seconds: float = 0.0


class _Readline:
    """The standard library's readline when available, with a history file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            import readline
        except ImportError:  # not on every platform: plain input() still works
            self.module: Any = None
            return
        self.module = readline
        readline.set_history_length(HISTORY_LENGTH)
        if path is not None and path.is_file():
            try:
                readline.read_history_file(path)
            except OSError:
                pass

    def remember(self) -> None:
        """Saves the history now, so a killed session loses nothing."""
        if self.module is None or self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.module.write_history_file(self.path)
        except OSError:
            pass  # a read-only home must not stop the translator


def _more_input_waiting(stream: Any) -> bool:
    try:
        ready, _, _ = select.select([stream], [], [], PASTE_DELAY_SECONDS)
    except (OSError, ValueError):
        return False
    return bool(ready)


class EntryReader:
    """Reads the REPL's entries: a typed line, or every line of a paste, with readline's line
    editing and history. The prompt goes to stdout when `live` (stdout is the terminal), else to
    stderr, so that a redirected stdout receives results only."""

    def __init__(self, history: Path | None, live: bool) -> None:
        self.live = live
        self.readline = _Readline(history)
        self.interactive = sys.stdin is not None and sys.stdin.isatty()

    def _input(self, prompt: str) -> str:
        if prompt and not self.live:  # input() would write the prompt into stdout
            sys.stderr.write(prompt)
            sys.stderr.flush()
            prompt = ""
        return input(prompt)

    def read_entry(self) -> str:
        """One entry: a typed line, or every line of a paste (input() raises EOFError at the
        end of input and KeyboardInterrupt on Ctrl-C)."""
        if sys.stdin is None:
            raise EOFError
        lines = [self._input(PROMPT if self.interactive else "")]
        while self.interactive and _more_input_waiting(sys.stdin):
            try:
                lines.append(input(""))
            except EOFError:
                break
        self.readline.remember()
        return "\n".join(lines)


class ReplTerminal:
    """Where a REPL (this translation one, lm_chat's conversation) reads and writes."""

    def __init__(self, history: Path | None) -> None:
        self.output = stdout_stream()
        # On a terminal, answers are drawn live; otherwise stdout carries only them.
        self.live = stdout_console().is_terminal
        # Replies to commands, notes: with the answers on a terminal, else on stderr.
        self.console = stdout_console() if self.live else stderr_console()
        # The banner and per-answer speed: wherever a person is watching, if anywhere.
        self.chatter = self.live or stderr_console().is_terminal
        self.reader = EntryReader(history, self.live)


class Repl(ReplTerminal):
    def __init__(self, session: Session, settings: Settings, history: Path | None) -> None:
        super().__init__(history)
        self.session = session
        self.settings = settings
        self.stats = Statistics()
        self.interactive = self.reader.interactive

    # ---- input

    def read_entry(self) -> str:
        return self.reader.read_entry()

    # ---- commands

    def run(self) -> None:
        if self.chatter:
            self.console.print(f"[bold]pytransformer chat[/] · {escape(self._model_name())} · "
                               "/help for commands, Ctrl-D to quit", highlight=False)
        while True:
            try:
                entry = self.read_entry()
            except EOFError:
                if self.interactive:
                    self.console.print()
                return
            except KeyboardInterrupt:
                self.console.print()
                continue
            if not entry.strip() and self.live:
                continue  # (without a terminal an empty line gives an empty line)
            if entry.lstrip().startswith("/") and "\n" not in entry.strip():
                if not self.command(entry.strip()):
                    return
                continue
            self.translate(entry)

    def command(self, line: str) -> bool:
        """Runs a slash command; False when the session should end."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        name = name.lower()
        try:
            if name in ("/quit", "/exit", "/q"):
                return False
            if name in ("/help", "/?"):
                self._help()
            elif name == "/to":
                self._set_language(target=argument)
            elif name == "/from":
                self._set_language(source=argument)
            elif name == "/beam":
                self.settings.beam_size = self._positive(argument, "/beam N")
                self.console.print(f"beam size {self.settings.beam_size}", markup=False)
            elif name in ("/max-length", "/max_length"):
                value = self._positive(argument, "/max-length N")
                self.session.check_max_length(value, "/max-length")
                self.settings.max_length = value
                self.console.print(f"max length {self.settings.max_length}", markup=False)
            elif name == "/model":
                self._load_model(argument)
            elif name == "/stats":
                self._show_stats()
            else:
                raise CliError(f"unknown command {name} (/help lists the commands)")
        except Exception as error:  # noqa: BLE001 - a bad command must not end the session
            print_error(error)
        return True

    def _help(self) -> None:
        table = Table(show_header=False, box=None, pad_edge=False)
        for usage, meaning in HELP:
            table.add_row(f"[bold]{usage}[/]", meaning)
        self.console.print(table)

    @staticmethod
    def _positive(argument: str, usage: str) -> int:
        if not argument.isdigit() or int(argument) < 1:
            raise CliError(f"usage: {usage} (N a positive integer)")
        return int(argument)

    def _set_language(self, source: str | None = None, target: str | None = None) -> None:
        value = source if source is not None else target
        if not value:
            raise CliError("usage: /to LANG or /from LANG (or 'auto')")
        value = None if value.lower() == "auto" else value
        new_source = value if source is not None else self.settings.source_language
        new_target = value if target is not None else self.settings.target_language
        if target is not None and value is not None and not self.session.languages.needs_source:
            new_source = None  # a new target overrides an earlier /from (NLLB keeps it)
        self.session.languages.resolve_fixed(new_source, new_target)
        self.settings.source_language, self.settings.target_language = new_source, new_target
        self.console.print(f"{'from' if source is not None else 'to'} {value or 'auto'}",
                           markup=False, highlight=False)
        if value is not None and not self.session.languages.knows_languages():
            self.console.print("note: this model translates one way and does not say which "
                               "languages; the setting is not checked", style="yellow")

    def _load_model(self, argument: str) -> None:
        if not argument:
            raise CliError("usage: /model PATH")
        session = Session(argument, self.session.threads, self.session.device)
        session.languages.resolve_fixed(self.settings.source_language,
                                        self.settings.target_language)
        if self.settings.max_length is not None:
            session.check_max_length(self.settings.max_length, "/max-length")
        self.session = session
        self.console.print(f"loaded {self._model_name()}", markup=False, highlight=False)

    def _model_name(self) -> str:
        return str(self.session.model_path)

    def _show_stats(self) -> None:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")  # a long model path wraps within the column
        languages = self.session.languages.selectable
        table.add_row("model", escape(self._model_name()))
        table.add_row("device", escape(self.session.translator.device))
        if languages:
            table.add_row("languages", escape(", ".join(bare(language)
                                                        for language in languages)))
        table.add_row("from / to", escape(f"{self.settings.source_language or 'auto'} / "
                                          f"{self.settings.target_language or 'auto'}"))
        beam = self.settings.beam_size or 1  # what Session.stream decodes with
        table.add_row("beam size", f"{beam} (greedy search, streamed)" if beam == 1 else
                      f"{beam} (beam search, shown when complete)")
        max_length = self.session.effective_max_length(self.settings)
        table.add_row("max length", "the model's limit" if max_length is None else
                      f"{max_length}" + ("" if self.settings.max_length is not None
                                         else " (the model's default)"))
        stats = self.stats
        table.add_row("translations", str(stats.translations))
        table.add_row("tokens", str(stats.tokens))
        if stats.seconds > 0:
            table.add_row("average speed", f"{stats.tokens / stats.seconds:.1f} tokens/s")
        if stats.last_seconds > 0:
            table.add_row("last speed", f"{stats.last_tokens / stats.last_seconds:.1f} tokens/s")
        self.console.print(table)

    # ---- translation

    def translate(self, entry: str) -> None:
        """Translates each line of the entry, streaming; empty lines stay empty. A line that
        fails or is interrupted is reported (on stderr without a terminal, where it still gives
        its line on stdout, empty, to keep one line per input line)."""
        for line in entry.split("\n"):
            for message in describe_notes(self.session.notes([line], self.settings),
                                          single=True, option="/to"):
                print_warning(message)
            try:
                self._translate_line(line)
            except KeyboardInterrupt:
                self.console.print("[yellow]⏹ interrupted[/]")
                if not self.live:
                    self._write_line("")
                return  # the rest of the entry too
            except Exception as error:  # noqa: BLE001 - show it and keep the session
                print_error(error)
                if not self.live:
                    self._write_line("")

    def _translate_line(self, line: str) -> None:
        sentences = split_sentences(line)
        if not self.live:
            self._write_line(self._whole_line(sentences))
        elif not sentences:
            self.console.print()
        else:
            self._stream_line(sentences)

    def _write_line(self, text: str) -> None:
        self.output.write(text + "\n")
        self.output.flush()

    def _whole_line(self, sentences: list[str]) -> str:
        """Without a terminal: the line's translation, no live view; its speed on stderr when
        a person watches there."""
        text = ""
        tokens = 0
        started = time.perf_counter()
        for sentence in sentences:
            sentence_text = ""
            sentence_tokens = 0
            pieces = self.session.stream(sentence, self.settings)
            try:
                for piece, count in pieces:
                    sentence_text += piece
                    sentence_tokens = count
            finally:
                pieces.close()
            tokens += sentence_tokens
            text = join_two(text, sentence_text.strip())
        if sentences:
            self._count(tokens, time.perf_counter() - started)
            if self.chatter:
                self.console.print(self._status(tokens, time.perf_counter() - started),
                                   style="dim", markup=False, highlight=False)
        return text

    @staticmethod
    def _status(tokens: int, seconds: float) -> str:
        rate = tokens / seconds if seconds > 0 else 0.0
        return f"{tokens} tokens · {seconds:.2f} s · {rate:.1f} tokens/s"

    def _count(self, tokens: int, seconds: float, completed: bool = True) -> None:
        self.stats.translations += 1 if completed else 0
        self.stats.tokens += tokens
        self.stats.seconds += seconds
        self.stats.last_tokens, self.stats.last_seconds = tokens, seconds

    def _stream_line(self, sentences: list[str]) -> None:
        shown = ""
        tokens = 0
        started = time.perf_counter()
        last_refresh = 0.0

        def view(final: bool = False) -> Group:
            status = self._status(tokens, time.perf_counter() - started)
            return Group(Text(shown, style="bold green"),
                         Text(status + ("" if final else " …"), style="dim"))

        completed = False
        with Live(view(), console=self.console, auto_refresh=False,
                  redirect_stdout=False, redirect_stderr=False) as live:
            try:
                for sentence in sentences:
                    prefix = shown
                    sentence_text = ""
                    earlier_tokens = tokens
                    pieces = self.session.stream(sentence, self.settings)
                    try:
                        for piece, count in pieces:
                            sentence_text += piece
                            tokens = earlier_tokens + count
                            shown = join_two(prefix, sentence_text.strip())
                            now = time.perf_counter()
                            if now - last_refresh >= REFRESH_SECONDS:
                                live.update(view(), refresh=True)
                                last_refresh = now
                    finally:
                        pieces.close()  # stops the decoding when interrupted
                completed = True
            finally:
                live.update(view(final=True))  # drawn once, when the Live display stops
                self._count(tokens, time.perf_counter() - started, completed)


def _positive_or_none(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be greater than 0 (got {value:g})")
    return value


def _language_model_file(model: str | None) -> Path | None:
    """The file `--model` (or the default) names when it is a language model; None for a
    translation model, and for anything the translation REPL's loading should report (no
    model, an unreadable file) as it always has."""
    path = model_for_option(model) if model is not None else default_model()
    if path is None:
        return None
    try:
        found = architecture(path)
    except Exception:  # noqa: BLE001 - Session reports it, with the translator's message
        return None
    return path if found in LANGUAGE_MODEL_ARCHITECTURES else None


def _given(options: dict[str, Any]) -> str:
    return ", ".join(name for name, value in options.items() if value is not None)


@reports_errors
def chat(
    source_language: Optional[str] = typer.Option(
        None, "--from", help="Translation: source language (default: detected from the "
        "text; required by NLLB-200 / M2M100 models)."),
    target_language: Optional[str] = typer.Option(
        None, "--to", help="Translation: target language (default: the other language of the "
        "model)."),
    beam: Optional[int] = typer.Option(
        None, "--beam", "-b", min=1, help="Translation: beam size (default 1: greedy search, "
        "streamed token by token; a larger beam shows each translation when it is complete)."),
    max_length: Optional[int] = typer.Option(
        None, "--max-length", min=1, help="Translation: maximum generated tokens per "
        "sentence."),
    temperature: Optional[float] = typer.Option(
        None, "--temperature", min=0.0, help="Language model: sampling temperature (default "
        f"{DEFAULT_TEMPERATURE}; 0: greedy)."),
    top_p: Optional[float] = typer.Option(
        None, "--top-p", max=1.0, callback=_positive_or_none,
        help=f"Language model: nucleus sampling, 0 < P <= 1 (default {DEFAULT_TOP_P})."),
    top_k: Optional[int] = typer.Option(
        None, "--top-k", min=0, help="Language model: sample from the K most likely tokens "
        f"(default {DEFAULT_TOP_K}; 0: all)."),
    min_p: Optional[float] = typer.Option(
        None, "--min-p", min=0.0, max=1.0, help="Language model: drop tokens less likely "
        "than P times the most likely one (default 0: none)."),
    repeat_penalty: Optional[float] = typer.Option(
        None, "--repeat-penalty", min=0.0, help="Language model: divide the scores of tokens "
        "already in the conversation by this (transformers' repetition_penalty; default 1: "
        "off)."),
    seed: Optional[int] = typer.Option(
        None, "--seed", min=0, help="Language model: seed of the session's sampling, for a "
        "reproducible session (default: random)."),
    max_tokens: Optional[int] = typer.Option(
        None, "--max-tokens", min=1, help="Language model: most tokens per answer (default: "
        "the model's generation limit, at most half the context)."),
    system: Optional[str] = typer.Option(
        None, "--system", help="Language model: the system prompt."),
    history: bool = typer.Option(
        True, "--history/--no-history",
        help="Keep the input history in $XDG_DATA_HOME/pytransformer/history (lm-history for "
        "language models)."),
    model: Optional[str] = MODEL_OPTION,
    threads: int = THREADS_OPTION,
    device: str = DEVICE_OPTION,
) -> None:
    """Interactive translation, or a conversation with a language model.

    With a translation model: type or paste text, watch it stream. Slash commands: /to LANG,
    /from LANG, /beam N, /max-length N, /model PATH, /stats, /help, /quit. Ctrl-C stops a
    translation, Ctrl-D quits. When stdout is not a terminal, it gets one line per input line
    and everything else goes to stderr.

    With a language model (one with a chat template): a multi-turn conversation, answers
    streamed; the oldest exchanges are dropped when the context is full. Slash commands:
    /system TEXT, /reset, /temp X, /top-p X, /top-k N, /max-tokens N, /stats, /help, /quit.
    Ctrl-C stops an answer (kept in the conversation), Ctrl-D quits.
    """
    translation_options = {"--from": source_language, "--to": target_language,
                           "--beam": beam, "--max-length": max_length}
    language_options = {"--temperature": temperature, "--top-p": top_p, "--top-k": top_k,
                        "--min-p": min_p, "--repeat-penalty": repeat_penalty, "--seed": seed, "--max-tokens": max_tokens, "--system": system}
    language_model = _language_model_file(model)
    if language_model is not None:
        from pytransformer.cli.lm_chat import ChatSettings, run_language_chat

        if _given(translation_options):
            raise CliError(f"{_given(translation_options)}: for translation models; "
                           f"{language_model} is a language model")
        if device != "cpu":
            raise CliError(f"--device {device}: language models run on the CPU only")
        settings_lm = ChatSettings(
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            top_p=DEFAULT_TOP_P if top_p is None else top_p,
            top_k=DEFAULT_TOP_K if top_k is None else top_k,
            min_p=0.0 if min_p is None else min_p,
            repetition_penalty=1.0 if repeat_penalty is None else repeat_penalty,
            max_tokens=max_tokens, seed=seed, system=system or None)
        run_language_chat(language_model, threads, settings_lm, history)
        return
    if _given(language_options):
        raise CliError(f"{_given(language_options)}: for language models; this is a "
                       "translation model (see `pytransformer chat --help`)")
    settings = Settings(source_language, target_language, beam, 1, max_length)
    session = Session(model, threads, device)
    session.check(settings)
    Repl(session, settings, history_file() if history else None).run()
