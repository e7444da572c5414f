"""`pytransformer translate`: text from arguments, a file or stdin; one output line per input
line."""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any, Optional, TextIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pytransformer.cli.atomic import atomic_text_output
from pytransformer.cli.console import stderr_console
from pytransformer.cli.errors import CliError, reports_errors
from pytransformer.cli.options import MODEL_OPTION, THREADS_OPTION
from pytransformer.cli.session import LineResult, Session, Settings, count_sentences


def decode_input(data: bytes, name: str) -> list[str]:
    """UTF-8 bytes -> lines (split on newlines only; a final newline ends the last line).
    Invalid UTF-8 raises CliError naming the line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        bad = data[error.start: error.start + 1].hex()
        raise CliError(f"{name}: invalid UTF-8 on line {line} (byte 0x{bad})") from None
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_input(texts: list[str] | None, file: Path | None) -> tuple[list[str], str]:
    """The input lines and a name for messages."""
    if texts and file is not None:
        raise CliError("give TEXT or --file, not both")
    if texts:
        return decode_input(" ".join(texts).encode("utf-8", "surrogateescape"), "argument"), \
            "argument"
    if file is not None and str(file) != "-":
        if file.is_dir():
            raise CliError(f"{file} is a directory")
        return decode_input(file.read_bytes(), str(file)), str(file)
    if file is None and sys.stdin.isatty():
        raise CliError("no text to translate: give TEXT, --file FILE, or pipe text on stdin")
    stream = getattr(sys.stdin, "buffer", None)
    data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    return decode_input(data, "stdin"), "stdin"


def _progress(enabled: bool, total: int) -> tuple[Any, Any]:
    if not enabled:
        return nullcontext(), None
    progress = Progress(TextColumn("translating"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("sentences"), TimeRemainingColumn(),
                        console=stderr_console(), transient=True)
    return progress, total


def _json_line(result: LineResult, n_best: int) -> dict[str, Any]:
    hypotheses = result.hypotheses(n_best)
    return {
        "source": result.source,
        "translation": hypotheses[0],
        "hypotheses": hypotheses,
        "sentences": [
            {
                "source": sentence.source,
                "target_language": sentence.target_language,
                "hypotheses": sentence.hypotheses,
                "scores": sentence.scores,
            }
            for sentence in result.sentences
        ],
    }


@reports_errors
def translate(
    text: Optional[list[str]] = typer.Argument(
        None, metavar="[TEXT]...", help="Text to translate (several words are joined by spaces). "
        "Without TEXT or --file, stdin is read."),
    file: Optional[Path] = typer.Option(
        None, "--file", "-f", help="Translate this UTF-8 file, line by line ('-': stdin)."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o",
        help="Write the result to this file, atomically (it appears only when complete)."),
    source_language: Optional[str] = typer.Option(
        None, "--from", help="Source language (for models with several directions)."),
    target_language: Optional[str] = typer.Option(
        None, "--to", help="Target language (default: for a two-language model such as the "
        "default en<->zh one, the language the text is not written in)."),
    beam: Optional[int] = typer.Option(
        None, "--beam", "-b", min=1, help="Beam size (default: the model's)."),
    n_best: int = typer.Option(
        1, "--n-best", "-n", min=1,
        help="Hypotheses per line; in text output they are separated by tabs."),
    max_length: Optional[int] = typer.Option(
        None, "--max-length", min=1, help="Maximum generated tokens per sentence."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: translations, scores and timings."),
    progress: Optional[bool] = typer.Option(
        None, "--progress/--no-progress",
        help="Progress bar on stderr (default: for --file when stderr is a terminal)."),
    model: Optional[str] = MODEL_OPTION,
    threads: int = THREADS_OPTION,
) -> None:
    """Translate text: one output line per input line, empty lines kept.

    Lines with several sentences are split into sentences, translated, and rejoined.
    """
    lines, _ = read_input(text, file)
    settings = Settings(source_language, target_language, beam, n_best, max_length)
    session = Session(model, threads)
    session.check(settings)
    show_progress = progress if progress is not None else (
        file is not None and stderr_console().is_terminal)

    started = time.perf_counter()
    sentences_done = 0
    tokens_done = 0
    records: list[dict[str, Any]] = []
    with ExitStack() as stack:
        sink: TextIO = (stack.enter_context(atomic_text_output(output)) if output is not None
                        else sys.stdout)
        bar_context, total = _progress(show_progress, count_sentences(lines) if show_progress
                                       else 0)
        bar = stack.enter_context(bar_context)
        task = bar.add_task("translate", total=total) if bar is not None else None

        def advance(count: int) -> None:
            if bar is not None:
                bar.advance(task, count)

        for result in session.translate_lines(lines, settings, with_scores=as_json,
                                              on_sentences=advance):
            sentences_done += len(result.sentences)
            tokens_done += sum(s.tokens or 0 for s in result.sentences)
            if as_json:
                records.append(_json_line(result, n_best))
            else:
                sink.write("\t".join(result.hypotheses(n_best)) + "\n")
                if sink is sys.stdout:
                    sink.flush()
        if as_json:
            seconds = time.perf_counter() - started
            timings: dict[str, Any] = {
                "load_seconds": round(session.load_seconds, 6),
                "translate_seconds": round(seconds, 6),
                "lines": len(lines),
                "sentences": sentences_done,
                "sentences_per_second": round(sentences_done / seconds, 3) if seconds else None,
            }
            if tokens_done:
                timings["tokens"] = tokens_done
                timings["tokens_per_second"] = round(tokens_done / seconds, 3) if seconds else None
            document = {
                "model": str(session.model_path),
                "translations": records,
                "timings": timings,
            }
            json.dump(document, sink, ensure_ascii=False, indent=2)
            sink.write("\n")
