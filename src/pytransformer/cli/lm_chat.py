"""`pytransformer chat` with a language model: a multi-turn conversation (REPL).

The conversation is a list of messages (an optional system message, then user and assistant
turns) rendered through the model's chat template for every answer, so the model sees the whole
conversation each turn. When the prompt and the room kept for the answer (--max-tokens) would
overflow the model's context, the oldest exchanges are dropped (the system message stays) and a
dim line says so. Answers stream token by token with a live tokens/s count, drawn as the
translation REPL draws its translations (chat_command.py, whose line reader and history this
reuses). Ctrl-C stops an answer (what was generated stays in the conversation) and returns to
the prompt; Ctrl-D (or /quit) leaves.

When stdout is not a terminal, stdout receives each answer followed by a newline, and nothing
else; replies to commands, notes and errors go to stderr, the banner and each answer's speed
too when stderr is a terminal.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from pytransformer.cli.chat_command import (DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P,
                                            REFRESH_SECONDS, ReplTerminal)
from pytransformer.cli.errors import CliError, print_error
from pytransformer.cli.generate_command import (GenerationTimer, load_language_model,
                                                require_chat_template, room_after)
from pytransformer.cli.model_store import history_file

# Without --max-tokens: the model's generation.max_length, but at most this share of the
# context, so that the conversation keeps the rest.
DEFAULT_ANSWER_SHARE = 0.5

HELP = [
    ("/system TEXT", "set the system prompt and start a new conversation (/system alone: "
                     "remove it)"),
    ("/reset", "start a new conversation (the system prompt is kept)"),
    ("/temp X", "sampling temperature (0: greedy, the most likely token each time)"),
    ("/top-p X", "sample from the most likely tokens whose probabilities add up to X (0 < X <= 1)"),
    ("/top-k N", "sample from the N most likely tokens (0: all)"),
    ("/max-tokens N", "most tokens per answer"),
    ("/stats", "the last answer's speed, context used, settings"),
    ("/help", "this list"),
    ("/quit", "leave (or Ctrl-D)"),
]


def lm_history_file() -> Path:
    """The conversation REPL's input history (the translation REPL keeps its own)."""
    return history_file().with_name("lm-history")


@dataclass
class ChatSettings:
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    top_k: int = DEFAULT_TOP_K
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    max_tokens: int | None = None  # None: default_max_tokens()
    seed: int | None = None  # None: a random session
    system: str | None = None


@dataclass
class Answer:
    """One answer as far as it got: its text, and its timing (tokens included)."""
    text: str
    timer: GenerationTimer
    interrupted: bool = False


def default_max_tokens(model: Any) -> int:
    context = model.context_length
    wanted = int(model.metadata.get("generation.max_length", context))
    return max(1, min(wanted, int(context * DEFAULT_ANSWER_SHARE)))


def _float(argument: str, usage: str) -> float:
    try:
        return float(argument)
    except ValueError:
        raise CliError(f"usage: {usage}") from None


def _integer(argument: str, usage: str, minimum: int) -> int:
    if not argument.isdigit() or int(argument) < minimum:
        raise CliError(f"usage: {usage}")
    return int(argument)


class _Tail:
    """The last lines of `text` that leave `below` lines of the terminal free: a long answer
    keeps its newest words in view while it streams (the whole answer is drawn at the end)."""

    def __init__(self, text: Text, below: int) -> None:
        self.text = text
        self.below = below

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.text, options.update(height=None), pad=False)
        keep = max(1, console.size.height - self.below - 1)
        for line in lines[-keep:]:
            yield from line
            yield Segment.line()


class LanguageChat(ReplTerminal):
    """The conversation REPL over one LanguageModel."""

    def __init__(self, model: Any, settings: ChatSettings, history: Path | None) -> None:
        super().__init__(history)
        self.model = model
        self.settings = settings
        self.random = random.Random(settings.seed)  # a seed: the same session every time
        self.messages: list[dict[str, str]] = []
        self.last: Answer | None = None
        self.context_used = 0  # the last answer's prompt and generated tokens
        self.restart()

    # ---- the conversation

    def restart(self) -> None:
        """A new conversation: the system message only, if any."""
        self.messages = ([{"role": "system", "content": self.settings.system}]
                         if self.settings.system else [])
        self.context_used = 0

    def max_tokens(self) -> int:
        if self.settings.max_tokens is not None:
            return self.settings.max_tokens
        return default_max_tokens(self.model)

    def _turns_start(self) -> int:
        return 1 if self.messages and self.messages[0]["role"] == "system" else 0

    def fit(self) -> tuple[list[int], int]:
        """The prompt ids of the conversation (its last message the user's new one), after
        dropping the oldest exchanges until the prompt leaves max_tokens() of room in the
        context; and how many tokens the answer may have. Says what was dropped. CliError when
        even the new message alone leaves no room."""
        wanted = self.max_tokens()
        messages = list(self.messages)  # changed only when the message fits
        dropped = 0
        start = self._turns_start()
        while True:
            ids = self.model.chat_ids(messages)
            room = room_after(self.model, len(ids))
            if room >= wanted or len(messages) - start <= 1:
                break
            del messages[start:start + 2]  # the oldest user message and its answer
            dropped += 1
        if room < 1:
            raise CliError(f"the message makes a prompt of {len(ids)} tokens and the model's "
                           f"context holds {self.model.context_length}: shorten it")
        self.messages[:] = messages
        if dropped:
            self.console.print(f"(dropped the oldest {dropped} exchange"
                               f"{'s' if dropped > 1 else ''} to fit the context of "
                               f"{self.model.context_length} tokens)", style="dim",
                               markup=False, highlight=False)
        if room < wanted:
            self.console.print(f"(this answer may have at most {room} tokens: the context is "
                               "full after that)", style="dim", markup=False, highlight=False)
        return ids, min(room, wanted)

    def answer(self, entry: str) -> None:
        """Adds the user's message, streams the answer and adds it (as far as it got when
        interrupted)."""
        message = {"role": "user", "content": entry}
        self.messages.append(message)
        sampling = self.settings.temperature > 0
        try:
            ids, max_new_tokens = self.fit()
            stream = self.model.stream(
                ids, max_new_tokens=max_new_tokens, temperature=self.settings.temperature,
                top_k=self.settings.top_k, top_p=self.settings.top_p,
                min_p=self.settings.min_p, repetition_penalty=self.settings.repetition_penalty,
                seed=self.random.getrandbits(63) if sampling else 0)
        except Exception:
            if self.messages and self.messages[-1] is message:
                self.messages.pop()  # not sent (e.g. a template error): not in the conversation
            raise
        answer = Answer("", GenerationTimer(len(ids)))
        try:
            if self.live:
                self._draw(stream, answer)
            else:
                self._write(stream, answer)
        except KeyboardInterrupt:
            answer.interrupted = True
            self.console.print("[yellow]⏹ interrupted[/]")
        finally:
            stream.close()  # stops the generation
            if answer.timer.ended is None:
                answer.timer.done(stream.token_count)
            self.messages.append({"role": "assistant", "content": answer.text})
            self.last = answer
            self.context_used = len(ids) + answer.timer.tokens
        if self.chatter and not self.live:
            self.console.print(self._status(answer.timer, final=True), style="dim",
                               markup=False, highlight=False)

    @staticmethod
    def _status(timer: GenerationTimer, final: bool) -> str:
        seconds = timer.elapsed()
        text = f"{timer.tokens} tokens · {seconds:.2f} s · {timer.generation_rate():.1f} tokens/s"
        return text if final else text + " …"

    def _draw(self, stream: Any, answer: Answer) -> None:
        timer = answer.timer
        last_refresh = 0.0

        def view(final: bool = False) -> Group:
            text = Text(answer.text)
            status = Text(self._status(timer, final), style="dim")
            return Group(text if final else _Tail(text, below=1), status)

        with Live(view(), console=self.console, auto_refresh=False,
                  redirect_stdout=False, redirect_stderr=False) as live:
            try:
                for piece in stream:
                    timer.text(stream.token_count)
                    answer.text += piece
                    now = time.perf_counter()
                    if now - last_refresh >= REFRESH_SECONDS:
                        live.update(view(), refresh=True)
                        last_refresh = now
                timer.done(stream.token_count)
            finally:
                if timer.ended is None:
                    timer.done(stream.token_count)
                live.update(view(final=True))  # drawn once, when the Live display stops

    def _write(self, stream: Any, answer: Answer) -> None:
        try:
            for piece in stream:
                answer.timer.text(stream.token_count)
                answer.text += piece
                self.output.write(piece)
                self.output.flush()
            answer.timer.done(stream.token_count)
        finally:
            self.output.write("\n")
            self.output.flush()

    # ---- the loop and the commands

    def run(self) -> None:
        if self.chatter:
            self.console.print(f"[bold]pytransformer chat[/] · {escape(self.model.name)} · "
                               f"language model, context {self.model.context_length} tokens · "
                               "/help for commands, Ctrl-D to quit", highlight=False)
        while True:
            try:
                entry = self.reader.read_entry()
            except EOFError:
                if self.reader.interactive:
                    self.console.print()
                return
            except KeyboardInterrupt:
                self.console.print()
                continue
            if not entry.strip():
                continue
            if entry.lstrip().startswith("/") and "\n" not in entry.strip():
                if not self.command(entry.strip()):
                    return
                continue
            try:
                self.answer(entry)
            except BrokenPipeError:
                raise  # the reader of stdout went away: the command ends (reports_errors)
            except Exception as error:  # noqa: BLE001 - show it and keep the session
                print_error(error)

    def command(self, line: str) -> bool:
        """Runs a slash command; False when the session should end."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        name = name.lower()
        settings = self.settings
        try:
            if name in ("/quit", "/exit", "/q"):
                return False
            if name in ("/help", "/?"):
                self._help()
            elif name == "/system":
                self._set_system(argument or None)
            elif name == "/reset":
                self.restart()
                self._say("new conversation")
            elif name in ("/temp", "/temperature"):
                value = _float(argument, "/temp X (X >= 0; 0: greedy)")
                if value < 0:
                    raise CliError("usage: /temp X (X >= 0; 0: greedy)")
                settings.temperature = value
                self._say(f"temperature {value:g}" + (" (greedy)" if value == 0 else ""))
            elif name in ("/top-p", "/top_p"):
                value = _float(argument, "/top-p X (0 < X <= 1)")
                if not 0 < value <= 1:
                    raise CliError("usage: /top-p X (0 < X <= 1)")
                settings.top_p = value
                self._say(f"top-p {value:g}")
            elif name in ("/top-k", "/top_k"):
                settings.top_k = _integer(argument, "/top-k N (N >= 0; 0: all)", 0)
                self._say(f"top-k {settings.top_k}")
            elif name in ("/max-tokens", "/max_tokens"):
                settings.max_tokens = _integer(argument, "/max-tokens N (N >= 1)", 1)
                self._say(f"max tokens {settings.max_tokens}")
            elif name == "/stats":
                self._show_stats()
            else:
                raise CliError(f"unknown command {name} (/help lists the commands)")
        except Exception as error:  # noqa: BLE001 - a bad command must not end the session
            print_error(error)
        return True

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def _help(self) -> None:
        table = Table(show_header=False, box=None, pad_edge=False)
        for usage, meaning in HELP:
            table.add_row(f"[bold]{escape(usage)}[/]", meaning)
        self.console.print(table)

    def _set_system(self, text: str | None) -> None:
        previous = self.settings.system
        self.settings.system = text
        if text is not None:
            try:  # a template that refuses system messages says so now, not at the next turn
                self.model.chat_prompt([{"role": "system", "content": text},
                                        {"role": "user", "content": "."}])
            except ValueError:
                self.settings.system = previous
                raise
        self.restart()
        self._say("system prompt set; new conversation" if text is not None
                  else "system prompt removed; new conversation")

    def _show_stats(self) -> None:
        settings = self.settings
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        table.add_row("model", escape(f"{self.model.name} ({self.model.path})"))
        table.add_row("context", f"{self.context_used} / {self.model.context_length} tokens")
        turns = sum(1 for message in self.messages if message["role"] == "user")
        table.add_row("conversation", f"{turns} exchange{'' if turns == 1 else 's'}" +
                      (", with a system prompt" if settings.system else ""))
        table.add_row("temperature", f"{settings.temperature:g}" +
                      (" (greedy)" if settings.temperature == 0 else ""))
        table.add_row("top-p / top-k", f"{settings.top_p:g} / {settings.top_k}")
        table.add_row("max tokens", str(self.max_tokens()) +
                      ("" if settings.max_tokens is not None else " (default)"))
        table.add_row("seed", "random" if settings.seed is None else str(settings.seed))
        last = self.last
        if last is not None:
            timer = last.timer
            table.add_row("last prompt", f"{timer.prompt_tokens} tokens · "
                          f"{timer.prompt_seconds:.3f} s · {timer.prompt_rate():.1f} tokens/s")
            table.add_row("last answer", f"{timer.tokens} tokens · "
                          f"{timer.generation_seconds:.3f} s · "
                          f"{timer.generation_rate():.1f} tokens/s" +
                          (" (interrupted)" if last.interrupted else ""))
        self.console.print(table)


def run_language_chat(path: Path, threads: int, settings: ChatSettings,
                      history: bool) -> None:
    """`pytransformer chat` on a language model file (chat_command.chat dispatches here)."""
    model = load_language_model(path, threads)
    require_chat_template(model, "it continues text but holds no conversation; use "
                                 f"`pytransformer generate -m {path}`")
    if settings.system:
        model.chat_prompt([{"role": "system", "content": settings.system},
                           {"role": "user", "content": "."}])  # (ValueError: refused now)
    LanguageChat(model, settings, lm_history_file() if history else None).run()

