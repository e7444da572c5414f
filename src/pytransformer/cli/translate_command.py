"""`pytransformer translate`: text from arguments, a file or stdin; one output line per input
line."""

from __future__ import annotations

import codecs
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pytransformer.cli.atomic import NamedOutput, open_output
from pytransformer.cli.console import stderr_console
from pytransformer.cli.errors import CliError, print_warning, reports_errors
from pytransformer.cli.options import DEVICE_OPTION, MODEL_OPTION, THREADS_OPTION
from pytransformer.cli.session import (LineResult, Session, Settings, count_sentences,
                                       describe_notes)


class InputErrors(str, Enum):
    """What `translate` does with a line that is not valid UTF-8."""
    strict = "strict"  # stop with an error naming the line; nothing is translated
    replace = "replace"  # translate it with each bad byte as U+FFFD
    skip = "skip"  # leave its output line empty (the output stays aligned)


@dataclass
class InputLines:
    """Decoded input: where it came from ("argument", "stdin" or the file's path), the lines,
    and the 1-based numbers of the lines that were not valid UTF-8 (replaced or emptied as
    `errors` said; empty under strict, which raises instead)."""
    name: str
    lines: list[str]
    invalid: list[int]

    def warning(self, errors: InputErrors) -> str:
        """The warning naming each line that was not valid UTF-8 and what became of it."""
        what = ("bad bytes replaced with U+FFFD" if errors is InputErrors.replace
                else "left untranslated: their output lines are empty")
        noun = "line" if len(self.invalid) == 1 else "lines"
        return (f"{self.name}: invalid UTF-8 on {noun} {', '.join(map(str, self.invalid))} "
                f"({what})")


def decode_input(data: bytes, name: str,
                 errors: InputErrors = InputErrors.strict) -> InputLines:
    """UTF-8 bytes -> lines (split on newlines only; a final newline ends the last line; a
    CR before the newline and a leading BOM are dropped). An invalid line raises CliError
    naming it under `strict`, else it is replaced or emptied and its number reported."""
    try:
        text = data.decode("utf-8-sig")  # the common case: one decode of the whole input
    except UnicodeDecodeError:
        return _decode_line_by_line(data.removeprefix(codecs.BOM_UTF8), name, errors)
    return InputLines(name, _split_lines(text), [])


def _split_lines(text: str) -> list[str]:
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _decode_line_by_line(data: bytes, name: str, errors: InputErrors) -> InputLines:
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines, invalid = [], []
    for number, raw in enumerate(raw_lines, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if errors is InputErrors.strict:
                bad = raw[error.start: error.start + 1].hex()
                raise CliError(f"{name}: invalid UTF-8 on line {number} (byte 0x{bad}); "
                               "--errors replace or skip translates such lines") from None
            invalid.append(number)
            line = raw.decode("utf-8", "replace") if errors is InputErrors.replace else ""
        lines.append(line)
    return InputLines(name, lines, invalid)


def read_input(texts: list[str] | None, file: Path | None,
               errors: InputErrors = InputErrors.strict) -> InputLines:
    """The input lines: from the arguments, the file (`-`: stdin) or stdin. Arguments are at
    least one line: an empty or blank TEXT is one empty line, as an empty input line is."""
    if texts and file is not None:
        raise CliError("give TEXT or --file, not both")
    if texts:
        joined = " ".join(texts).encode("utf-8", "surrogateescape")
        decoded = decode_input(joined, "argument", errors)
        return decoded if decoded.lines else InputLines(decoded.name, [""], [])
    if file is not None and str(file) != "-":
        if file.is_dir():
            raise CliError(f"{file} is a directory")
        return decode_input(file.read_bytes(), str(file), errors)
    if sys.stdin is None:
        raise CliError("stdin is closed: give TEXT or --file FILE")
    if file is None and sys.stdin.isatty():
        raise CliError("no text to translate: give TEXT, --file FILE, or pipe text on stdin")
    stream = getattr(sys.stdin, "buffer", None)
    data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    return decode_input(data, "stdin", errors)


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
        None, metavar="TEXT", help="Text to translate (several words are joined by spaces; an "
        "empty TEXT gives one empty line). Without TEXT or --file, stdin is read."),
    file: Optional[Path] = typer.Option(
        None, "--file", "-f", help="Translate this UTF-8 file, line by line ('-': stdin)."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o",
        help="Write the result to this file ('-': stdout). A regular file is replaced "
        "atomically, only when complete (through symlinks: the file they point to); a device "
        "or FIFO is written directly; a read-only file is refused."),
    source_language: Optional[str] = typer.Option(
        None, "--from", help="Source language (for models with several directions)."),
    target_language: Optional[str] = typer.Option(
        None, "--to", help="Target language (default: for a two-language model such as the "
        "default en<->zh one, the language the text is not written in). Text already in it "
        "is copied unchanged, with a warning."),
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
    errors: InputErrors = typer.Option(
        InputErrors.strict, "--errors", case_sensitive=False,
        help="Lines that are not valid UTF-8: strict stops with an error naming the line; "
             "replace translates them with U+FFFD for each bad byte; skip leaves their output "
             "lines empty. replace and skip name every such line on stderr."),
    model: Optional[str] = MODEL_OPTION,
    threads: int = THREADS_OPTION,
    device: str = DEVICE_OPTION,
) -> None:
    """Translate text: one output line per input line, empty lines kept.

    Lines with several sentences are split into sentences, translated, and rejoined.
    """
    decoded = read_input(text, file, errors)
    if decoded.invalid:
        print_warning(decoded.warning(errors))
    lines = decoded.lines
    settings = Settings(source_language, target_language, beam, n_best, max_length)
    session = Session(model, threads, device)
    session.check(settings)
    single = bool(text) and len(lines) == 1  # one text given as arguments
    for message in describe_notes(session.notes(lines, settings), single=single):
        print_warning(message)
    show_progress = progress if progress is not None else (
        file is not None and stderr_console().is_terminal)
    with ExitStack() as stack:
        sink = stack.enter_context(open_output(output))
        advance = (stack.enter_context(_progress_bar(count_sentences(lines))) if show_progress
                   else None)
        results = session.translate_lines(lines, settings, with_scores=as_json,
                                          on_sentences=advance)
        if as_json:
            _write_json(sink, session, lines, results, n_best)
        else:
            for result in results:
                sink.write("\t".join(result.hypotheses(n_best)) + "\n")
                sink.flush()  # a line as soon as it is translated (pipes, `tail -f`)


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar in sentences on stderr; yields the function that advances it."""
    with Progress(TextColumn("translating"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("sentences"), TimeRemainingColumn(), console=stderr_console(),
                  transient=True) as bar:
        task = bar.add_task("translate", total=total)
        yield lambda count: bar.advance(task, count)


def _write_json(sink: NamedOutput, session: Session, lines: list[str],
                results: Iterable[LineResult], n_best: int) -> None:
    started = time.perf_counter()
    records = []
    sentences = tokens = 0
    for result in results:
        records.append(_json_line(result, n_best))
        sentences += len(result.sentences)
        tokens += sum(sentence.tokens for sentence in result.sentences)
    seconds = time.perf_counter() - started

    def per_second(count: int) -> float | None:
        return round(count / seconds, 3) if seconds > 0 else None

    timings = {
        "load_seconds": round(session.load_seconds, 6),
        "translate_seconds": round(seconds, 6),
        "lines": len(lines),
        "sentences": sentences,
        "sentences_per_second": per_second(sentences),
        "tokens": tokens,
        "tokens_per_second": per_second(tokens),
    }
    document = {"model": str(session.model_path), "device": session.translator.device,
                "translations": records, "timings": timings}
    json.dump(document, sink, ensure_ascii=False, indent=2)
    sink.write("\n")
