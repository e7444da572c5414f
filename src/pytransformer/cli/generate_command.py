"""`pytransformer generate`: one-shot text completion with a language model, for pipes.

The prompt (arguments, or stdin) is continued and the continuation streamed to stdout as it is
generated, then a newline; nothing else goes to stdout (--stats and warnings go to stderr).
Greedy by default, so the same prompt always gives the same text.

Also the helpers that `chat` uses with a language model (lm_chat.py): loading one by --model,
the architecture check, a conversation's prompt ids, and prompt / generation timing.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

import pytransformer
from pytransformer.cli.console import stderr_console, stdout_stream
from pytransformer.cli.errors import CliError, print_warning, reports_errors
from pytransformer.cli.model_store import default_model, model_for_option
from pytransformer.model_files import MODEL_ENVIRONMENT_VARIABLE

# general.architecture of the files pytransformer.LanguageModel runs (Llama, Qwen2, SmolLM,
# llama2.c conversions); translation models are "transformer-seq2seq".
LANGUAGE_MODEL_ARCHITECTURES = frozenset({"llama"})

LM_MODEL_OPTION = typer.Option(
    None, "--model", "-m",
    help="Language model file (.ptm), or the name of one in the user models directory (see "
    "`pytransformer models`). Default: $PYTRANSFORMER_MODEL.")
LM_THREADS_OPTION = typer.Option(
    0, "--threads", min=0, help="CPU threads for inference (0: automatic).")


def _positive_top_p(value: float) -> float:
    if value <= 0:
        raise typer.BadParameter(f"must be greater than 0 (got {value:g})")
    return value


# ---- language models for the CLI ----------------------------------------------------------


def architecture(path: Path) -> str:
    """The file's general.architecture (its metadata only is read)."""
    return pytransformer.describe_model(path).architecture


def language_model_path(spec: str | None, command: str) -> Path:
    """The file --model names (None: $PYTRANSFORMER_MODEL's), checked to be a language model:
    CliError naming `translate` and `chat` for a translation model."""
    if spec is not None:
        path = model_for_option(spec)
    elif os.environ.get(MODEL_ENVIRONMENT_VARIABLE, "").strip():
        path = default_model()  # (raises CliError when the variable names no model)
        assert path is not None
    else:
        raise CliError(f"{command} needs a language model: pass --model/-m MODEL (a .ptm file "
                       "or a name from `pytransformer models`) or set "
                       f"${MODEL_ENVIRONMENT_VARIABLE}")
    found = architecture(path)
    if found not in LANGUAGE_MODEL_ARCHITECTURES:
        raise CliError(f"{path} is a translation model (architecture {found}), not a language "
                       "model: use `pytransformer translate` or `pytransformer chat` with it")
    return path


def load_language_model(path: Path, threads: int) -> Any:
    return pytransformer.LanguageModel(path, threads=threads)


def require_chat_template(model: Any, use: str) -> None:
    if model.chat_template is None:
        raise CliError(f"{model.name} has no chat template (tokenizer.chat_template): {use}")


def room_after(model: Any, prompt_tokens: int) -> int:
    """How many tokens can be generated after a prompt of `prompt_tokens` (the last one is
    never fed back, so prompt + generated may exceed the context by one); < 1: none."""
    return model.context_length - prompt_tokens + 1


class GenerationTimer:
    """Times one generation in two phases: the prompt (from the start to the first text,
    which covers the prompt's pass and the first generated token) and the generation after it.
    Call `text(count)` at each increment (count: the stream's token_count), `done(count)` at
    the end."""

    def __init__(self, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.started = time.perf_counter()
        self.first_at: float | None = None
        self.first_count = 0
        self.ended: float | None = None
        self.tokens = 0

    def text(self, count: int) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
            self.first_count = count
        self.tokens = count

    def done(self, count: int) -> None:
        self.ended = time.perf_counter()
        self.tokens = count

    def elapsed(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def prompt_seconds(self) -> float:
        return (self.first_at or self.ended or time.perf_counter()) - self.started

    @property
    def generation_seconds(self) -> float:
        """The time after the first text; the whole time when all the text came at once."""
        if self.tokens <= self.first_count:
            return self.elapsed()
        return self.elapsed() - self.prompt_seconds

    def prompt_rate(self) -> float:
        seconds = self.prompt_seconds
        return self.prompt_tokens / seconds if seconds > 0 else 0.0

    def generation_rate(self) -> float:
        """Tokens per second after the first text (all of them over the whole time when they
        came at once)."""
        after_first = self.tokens - self.first_count
        seconds = self.generation_seconds
        if after_first > 0 and seconds > 0:
            return after_first / seconds
        total = self.elapsed()
        return self.tokens / total if total > 0 else 0.0


def describe_rate(tokens: int, seconds: float, rate: float) -> str:
    return f"{tokens} tokens · {seconds:.3f} s · {rate:.1f} tokens/s"


# ---- the command -----------------------------------------------------------------------------


def read_prompt(words: list[str] | None) -> str:
    """The prompt: the arguments joined by spaces, or (none, or a single '-') stdin as UTF-8
    with its final newline dropped. CliError when it is empty."""
    if words and words != ["-"]:
        text = " ".join(words).encode("utf-8", "surrogateescape").decode("utf-8")
        source = "PROMPT"
    else:
        if sys.stdin is None:
            raise CliError("stdin is closed: give the PROMPT as an argument")
        if sys.stdin.isatty() and not words:
            raise CliError("no prompt: give PROMPT, or pipe text on stdin")
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
        text = data.decode("utf-8-sig")
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
        source = "stdin"
    if not text:
        raise CliError(f"the prompt is empty ({source}): there is nothing to continue")
    return text


@reports_errors
def generate(
    prompt: Optional[list[str]] = typer.Argument(
        None, metavar="PROMPT", help="Text to continue (several words are joined by spaces). "
        "Without PROMPT, or with '-', stdin is read (its final newline dropped)."),
    max_tokens: Optional[int] = typer.Option(
        None, "--max-tokens", "-n", min=1, help="Most tokens to generate (default: the "
        "model's generation.max_length); cut to the room the prompt leaves in the context."),
    temperature: float = typer.Option(
        0.0, "--temperature", "-t", min=0.0, help="0 (the default): greedy, the same text "
        "every run; > 0: sample from softmax(logits / T)."),
    top_k: int = typer.Option(
        0, "--top-k", min=0, help="Sampling: only from the K most likely tokens (0: all)."),
    top_p: float = typer.Option(
        1.0, "--top-p", max=1.0, callback=_positive_top_p,
        help="Sampling: only from the most likely tokens whose probabilities add up to P "
        "(0 < P <= 1; 1: all)."),
    min_p: float = typer.Option(
        0.0, "--min-p", min=0.0, max=1.0, help="Sampling: drop tokens less likely than P "
        "times the most likely one (0: none)."),
    repeat_penalty: float = typer.Option(
        1.0, "--repeat-penalty", min=0.0, help="Divide the scores of tokens already in the "
        "prompt or the output by this (transformers' repetition_penalty; 1: off; e.g. 1.1)."),
    seed: Optional[int] = typer.Option(
        None, "--seed", min=0, help="Sampling: the random seed, for a reproducible sample "
        "(default: a random one)."),
    chat: bool = typer.Option(
        False, "--chat", help="Send the prompt as one user message through the model's chat "
        "template (an error if the model has none) and print the assistant's answer."),
    stats: bool = typer.Option(
        False, "--stats", help="Print the prompt's and the generation's tokens and tokens/s "
        "on stderr."),
    model: Optional[str] = LM_MODEL_OPTION,
    threads: int = LM_THREADS_OPTION,
) -> None:
    """Continue a prompt with a language model, streaming the text to stdout.

    The continuation is written as it is generated, then a newline; nothing else goes to
    stdout. Generation stops at the model's end token, after --max-tokens, or when the context
    is full. A translation model is refused: use translate or chat with it.
    """
    text = read_prompt(prompt)
    path = language_model_path(model, "generate")
    lm = load_language_model(path, threads)
    if chat:
        require_chat_template(lm, "--chat needs one; without --chat the prompt is continued "
                                  "as plain text")
        ids = lm.chat_ids([{"role": "user", "content": text}])
    else:
        ids = lm.prompt_ids(text)
    room = room_after(lm, len(ids))
    if room < 1:
        raise CliError(f"the prompt is {len(ids)} tokens and the model's context holds "
                       f"{lm.context_length}: shorten it")
    if max_tokens is not None and max_tokens > room:
        print_warning(f"--max-tokens {max_tokens}: the prompt ({len(ids)} tokens) leaves room "
                      f"for {room} in the model's context of {lm.context_length}")
    if repeat_penalty <= 0:
        raise CliError("--repeat-penalty must be > 0")
    if temperature == 0 and (top_k != 0 or top_p != 1.0 or min_p != 0 or seed is not None):
        print_warning("--top-k, --top-p, --min-p and --seed apply to sampling (--temperature "
                      "> 0); greedy decoding ignores them")
    output = stdout_stream()
    timer = GenerationTimer(len(ids))
    written = False
    with lm.stream(ids, max_new_tokens=max_tokens, temperature=temperature, top_k=top_k,
                   top_p=top_p, min_p=min_p, repetition_penalty=repeat_penalty,
                   seed=seed) as pieces:
        try:
            for piece in pieces:
                timer.text(pieces.token_count)
                output.write(piece)
                output.flush()
                written = True
        except KeyboardInterrupt:
            if written:
                output.write("\n")  # the shell's prompt on a line of its own
                output.flush()
            raise
        timer.done(pieces.token_count)
        finished = pieces.finished
    output.write("\n")
    output.flush()
    if stats:
        _print_stats(timer, finished)


def _print_stats(timer: GenerationTimer, finished: bool) -> None:
    console = stderr_console()
    console.print("prompt: " + describe_rate(timer.prompt_tokens, timer.prompt_seconds,
                                             timer.prompt_rate()),
                  markup=False, highlight=False, soft_wrap=True)
    ending = "ended by the model" if finished else "stopped at the length limit"
    console.print("generated: " + describe_rate(timer.tokens, timer.generation_seconds,
                                                timer.generation_rate()) + f" · {ending}",
                  markup=False, highlight=False, soft_wrap=True)
