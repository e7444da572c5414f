"""`pytransformer translate`: text from arguments, a file or stdin; one output line per input
line."""

from __future__ import annotations

import codecs
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from pytransformer.cli.atomic import NamedOutput, open_output
from pytransformer.cli.console import stderr_console
from pytransformer.cli.documents import DocumentFormat, format_for
from pytransformer.cli.corpus import (WINDOW_LINES, InputErrors, ResumableOutput, decode_line,
                                      read_windows, resumable_output, resume_path, scan_file,
                                      stream_windows)
from pytransformer.cli.errors import CliError, print_warning, reports_errors
from pytransformer.cli.options import DEVICE_OPTION, MODEL_OPTION, THREADS_OPTION
from pytransformer.cli.session import (LineResult, SentenceResult, Session, Settings,
                                       count_sentences, describe_notes)

if TYPE_CHECKING:  # rich.progress is imported where a bar is drawn: not for one sentence
    from rich.progress import Progress


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
        line, bad = decode_line(raw.removesuffix(b"\r"), number, name, errors)
        if bad:
            invalid.append(number)
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


def _json_sentence(sentence: SentenceResult) -> dict[str, Any]:
    record = {"source": sentence.source, "target_language": sentence.target_language,
              "hypotheses": sentence.hypotheses, "scores": sentence.scores}
    if sentence.confidence is not None:  # --min-confidence asked for it
        record.update(confidence=sentence.confidence, untranslated=sentence.untranslated)
    if sentence.source_language is not None:
        record["source_language"] = sentence.source_language
    if sentence.detected is not None:
        record["detected_language"] = {"language": sentence.detected.best,
                                       "probability": round(sentence.detected.best_score, 4)}
    return record


def _json_line(result: LineResult, n_best: int) -> dict[str, Any]:
    hypotheses = result.hypotheses(n_best)
    return {
        "source": result.source,
        "translation": hypotheses[0],
        "hypotheses": hypotheses,
        "sentences": [_json_sentence(sentence) for sentence in result.sentences],
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
        None, "--from", help="Source language (for models with several directions; "
        "required by NLLB-200 / M2M100 models). A short code (en, zh, pt) or the model's "
        "own (eng_Latn, zho_Hans, __zh__)."),
    target_language: Optional[str] = typer.Option(
        None, "--to", help="Target language (default: for a two-language model such as the "
        "default en<->zh one, the language the text is not written in). Text already in it "
        "is copied unchanged, with a warning. A short code (zh) or the model's own "
        "(>>zho<<, zho_Hans, __zh__)."),
    beam: Optional[int] = typer.Option(
        None, "--beam", "-b", min=1, help="Beam size (default: the model's)."),
    n_best: int = typer.Option(
        1, "--n-best", "-n", min=1,
        help="Hypotheses per line; in text output they are separated by tabs."),
    max_length: Optional[int] = typer.Option(
        None, "--max-length", min=1, help="Maximum generated tokens per sentence."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: translations, scores and timings."),
    json_lines: bool = typer.Option(
        False, "--json-lines", help="Print one JSON object per input line, as it is "
        "translated: {\"line\": N, \"source\": ..., \"translation\": ..., \"hypotheses\": [...]}."),
    progress: Optional[bool] = typer.Option(
        None, "--progress/--no-progress",
        help="Progress on stderr, and for --file a summary line at the end (default: for "
        "--file when stderr is a terminal)."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress or summary on stderr (warnings and errors "
        "are still printed)."),
    resume: bool = typer.Option(
        False, "--resume", help="With --file and --output FILE: continue from FILE.partial, "
        "the partial output an interrupted run leaves (a --file run into a regular or new FILE "
        "writes through it, synced to disk after every window of lines); FILE appears when "
        "complete, identical to an uninterrupted run's."),
    window_lines: int = typer.Option(
        WINDOW_LINES, "--window-lines", min=1, hidden=True,
        help="Lines of --file read, translated and written at a time."),
    document_format: Optional[DocumentFormat] = typer.Option(
        None, "--format", case_sensitive=False,
        help="text: line by line. markdown, html: the input is one document, translated "
             "sentence by sentence across its inline markup, which is put back at the "
             "translated words; code, URLs, attributes and block structure are kept "
             "(docs/cli.md). Default: from the --file extension (.md, .markdown: markdown; "
             ".html, .htm: html), else text."),
    errors: InputErrors = typer.Option(
        InputErrors.strict, "--errors", case_sensitive=False,
        help="Lines that are not valid UTF-8: strict stops with an error naming the line; "
             "replace translates them with U+FFFD for each bad byte; skip leaves their output "
             "lines empty. replace and skip name every such line on stderr."),
    repetition_penalty: float = typer.Option(
        1.0, "--repetition-penalty", min=0.0,
        help="Penalise tokens already generated (> 1; 1: off), as the model's search "
             "convention (transformers or CTranslate2) defines it."),
    no_repeat_ngram: Optional[int] = typer.Option(
        None, "--no-repeat-ngram", min=0,
        help="No n-gram of this many tokens twice in a translation (0: off; default: the "
             "model's)."),
    min_confidence: Optional[float] = typer.Option(
        None, "--min-confidence",
        help="Leave a sentence untranslated (its source copied, the line named on stderr) when "
             "its translation's confidence, the mean log-probability per token the model gives "
             "it (`pytransformer score`), is below this, e.g. -1.5. Comparable within one "
             "model only; --json reports each sentence's confidence."),
    via: Optional[str] = typer.Option(
        None, "--via", metavar="LANG",
        help="Pivot: translate into LANG first, then from LANG into --to, where no model "
             "translates directly. --model does the first step, --via-model the second "
             "(default: --model, e.g. a multilingual one). Noted on stderr; --json gives the "
             "intermediate text."),
    via_model: Optional[str] = typer.Option(
        None, "--via-model", help="With --via: the model for the second step, LANG -> --to "
                                  "(a .ptm file or a name, as --model)."),
    glossary: Optional[Path] = typer.Option(
        None, "--glossary",
        help="A UTF-8 file of 'source term<TAB>target term' lines: a sentence holding a "
             "source term is translated with its target term (lexically constrained beam "
             "search; docs/cli.md)."),
    keep: Optional[list[str]] = typer.Option(
        None, "--keep", metavar="REGEX",
        help="Text matching this regular expression comes out unchanged (repeatable)."),
    protect: bool = typer.Option(
        False, "--protect/--no-protect",
        help="Keep URLs, e-mail addresses, placeholders ({name}, %s, ${x}) and numbers "
             "unchanged."),
    shortlist: bool = typer.Option(
        True, "--shortlist/--no-shortlist",
        help="Use the model's lexical shortlist, if it has one (Bergamot models, or one added "
             "by `pytransformer shortlist`): each sentence may only produce the target words "
             "its source words allow, which is faster (docs/decoding.md)."),
    ray: bool = typer.Option(
        False, "--ray", help="Translate --file (files, directories or globs) into --output "
        "FILE, or into one file per input under --output DIR (an existing directory), on a "
        "Ray cluster: a pool of --actors translator actors, each "
        "loading the model once and using --threads threads; output identical to a run "
        "without --ray (pytransformer[ray] extra; docs/scale-out.md)."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="With --ray: the cluster to join (e.g. auto, or "
        "ray://HEAD:10001); default: a running one, else a local one."),
    actors: int = typer.Option(
        1, "--actors", min=1, help="With --ray: translator actors (each takes --threads CPUs)."),
    model: Optional[str] = MODEL_OPTION,
    threads: int = THREADS_OPTION,
    device: str = DEVICE_OPTION,
) -> None:
    """Translate text: one output line per input line, empty lines kept.

    Lines with several sentences are split into sentences, translated, and rejoined.
    """
    if as_json and json_lines:
        raise CliError("give --json or --json-lines, not both")
    settings = Settings(source_language, target_language, beam, n_best, max_length,
                        min_confidence, repetition_penalty, no_repeat_ngram,
                        read_glossary(glossary), checked_patterns(keep or []), protect)
    if via is not None or via_model is not None:
        if via is None:
            raise CliError("--via-model needs --via LANG")
        if (ray or ray_address is not None or resume or json_lines or glossary is not None
                or document_format not in (None, DocumentFormat.text)):
            raise CliError("--via translates text lines: not with --ray, --resume, "
                           "--json-lines, --glossary or --format")
        _translate_via(read_input(text, file, errors), via, output, errors, settings, as_json,
                       n_best, Session(model, threads, device, shortlist),
                       Session(via_model or model, threads, device, shortlist))
        return
    chosen_format = document_format or format_for(
        file if file is not None and str(file) != "-" else None)
    if chosen_format is not DocumentFormat.text:
        if ray or ray_address is not None or as_json or json_lines or resume or n_best > 1:
            raise CliError(f"--format {chosen_format.value} writes one document: --ray, "
                           "--json, --json-lines, --resume and --n-best are for text")
        _translate_document(read_input(text, file, errors), chosen_format, output, errors,
                            settings, Session(model, threads, device, shortlist))
        return
    if ray or ray_address is not None:
        if file is None or output is None or str(output) == "-" or text:
            raise CliError("--ray needs --file INPUT and --output FILE (and no TEXT)")
        if as_json or json_lines or resume:
            raise CliError("--ray writes text lines: --json, --json-lines and --resume are for "
                           "runs without it")
        from pytransformer.distributed import absolute_model

        _translate_on_ray(file, output, errors, settings, SessionLines(
            absolute_model(model), max(threads, 1), device, shortlist, settings), actors,
            max(threads, 1), ray_address, not quiet)
        return
    if text and file is not None:
        raise CliError("give TEXT or --file, not both")
    corpus = file is not None and str(file) != "-" and not as_json
    to_file = output is not None and str(output) != "-"
    if resume and not (corpus and to_file):
        raise CliError("--resume needs --file FILE and --output FILE (and not --json)")
    if to_file and not resume and resume_path(output).exists():
        raise CliError(f"{resume_path(output)} exists: the partial output of an interrupted "
                       "run; continue it with --resume, or delete it")
    show_progress = not quiet and (progress if progress is not None else (
        file is not None and stderr_console().is_terminal))
    if corpus:
        _translate_file(file, output, errors, settings, lambda: Session(model, threads, device, shortlist),
                        json_lines=json_lines, resume=resume, window_lines=window_lines,
                        show_progress=show_progress)
        return
    descriptor = _streamable_stdin(text, file, as_json)
    if descriptor is not None:
        _translate_stream(descriptor, output, errors, settings,
                          lambda: Session(model, threads, device, shortlist),
                          json_lines=json_lines, window_lines=window_lines,
                          show_progress=show_progress)
        return
    decoded = read_input(text, file, errors)
    if decoded.invalid:
        print_warning(decoded.warning(errors))
    lines = decoded.lines
    session = Session(model, threads, device, shortlist)
    session.check(settings)
    single = bool(text) and len(lines) == 1  # one text given as arguments
    for message in describe_notes(session.notes(lines, settings), single=single):
        print_warning(message)
    with ExitStack() as stack:
        sink = stack.enter_context(open_output(output))
        advance = (stack.enter_context(_progress_bar(count_sentences(lines))) if show_progress
                   else None)
        results = session.translate_lines(lines, settings, with_scores=as_json,
                                          on_sentences=advance)
        if as_json:
            _write_json(sink, session, lines, results, n_best)
        else:
            for number, result in enumerate(results, start=1):
                _write_line(sink, number, result, n_best, json_lines)


def read_glossary(path: Path | None) -> Any:
    """--glossary FILE as a pytransformer.constraints.Glossary (CliError naming what is
    wrong)."""
    if path is None:
        return None
    from pytransformer.constraints import Glossary

    try:
        return Glossary.read(path)
    except OSError as error:
        raise CliError(f"cannot read --glossary {path}: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise CliError(f"--glossary: {error}") from None


def checked_patterns(patterns: list[str]) -> tuple[str, ...]:
    import re

    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise CliError(f"--keep {pattern!r}: not a regular expression ({error})") from None
    return tuple(patterns)


def _translate_via(decoded: InputLines, via: str, output: Path | None, errors: InputErrors,
                   settings: Settings, as_json: bool, n_best: int, first: Session,
                   second: Session) -> None:
    """Each line into `via` with the first session's model, then from `via` into --to with
    the second's: a note on stderr says so, and --json gives each line's intermediate text."""
    from dataclasses import replace

    if decoded.invalid:
        print_warning(decoded.warning(errors))
    into = replace(settings, target_language=via, n_best=1, min_confidence=None)
    onward = replace(settings, source_language=via)
    first.check(into)
    second.check(onward)
    target = settings.target_language or "the other language"
    stderr_console().print(
        f"note: translated through {via}: {first.model_path.name} into {via}, then "
        f"{second.model_path.name} from {via} into {target}", style="yellow",
        highlight=False, soft_wrap=True)
    middle = [result.hypotheses(1)[0] for result in first.translate_lines(decoded.lines, into)]
    results = list(second.translate_lines(middle, onward, with_scores=as_json))
    with open_output(output) as sink:
        if not as_json:
            for number, result in enumerate(results, start=1):
                _write_line(sink, number, result, n_best, False)
            return
        records = []
        for source, pivot, result in zip(decoded.lines, middle, results):
            record = _json_line(result, n_best)
            record.update(source=source, pivot={"language": via, "text": pivot,
                                                "model": str(first.model_path)})
            records.append(record)
        json.dump({"model": str(second.model_path), "device": second.translator.device,
                   "pivot": {"language": via, "first_model": str(first.model_path),
                             "second_model": str(second.model_path)},
                   "translations": records}, sink, ensure_ascii=False, indent=2)
        sink.write("\n")


def _translate_document(decoded: InputLines, document_format: DocumentFormat,
                        output: Path | None, errors: InputErrors, settings: Settings,
                        session: Session) -> None:
    from pytransformer.cli.documents import translate_document

    if decoded.invalid:
        print_warning(decoded.warning(errors))
    session.check(settings)
    source = "\n".join(decoded.lines) + ("\n" if decoded.lines else "")
    translated = translate_document(source, document_format, session, settings)
    with open_output(output) as sink:
        sink.write(translated)


@dataclass(frozen=True)
class SessionLines:
    """The LineTranslator of `translate --ray` (pytransformer.distributed): each actor opens a
    Session and translates its lines as `translate --file` does, n-best hypotheses joined by
    tabs."""

    model: str | None
    threads: int
    device: str
    shortlist: bool
    settings: Settings

    def load(self) -> Callable[[list[str]], list[str]]:
        session = Session(self.model, self.threads, self.device, self.shortlist)
        session.check(self.settings)

        def translate(lines: list[str]) -> list[str]:
            return ["\t".join(result.hypotheses(self.settings.n_best))
                    for result in session.translate_lines(lines, self.settings)]

        return translate


def _translate_on_ray(file: Path, output: Path, errors: InputErrors, settings: Settings,
                      lines: SessionLines, actors: int, threads: int, address: str | None,
                      summary: bool) -> None:
    from pytransformer import distributed

    if errors is InputErrors.skip:
        raise CliError("--ray takes --errors strict or replace")
    # The model is checked here first, so that a wrong --model or --to is one quick error.
    Session(lines.model, 1, lines.device, lines.shortlist).check(settings)
    try:
        done = distributed.translate_dataset(
            [str(file)], output, translator=lines, actors=actors, threads_per_actor=threads,
            errors=errors.value, address=address)
    except distributed.DistributedError as error:
        raise CliError(str(error)) from None
    if summary:
        workers = ", ".join(f"{name} {count}" for name, count in done.lines_per_worker.items())
        stderr_console().print(f"{done.lines} lines in {done.seconds:.1f} s on {done.actors} "
                               f"actor{'s' if done.actors != 1 else ''}: lines per worker "
                               f"{workers}", markup=False, highlight=False)


def _warn_untranslated(number: int, result: LineResult) -> None:
    for sentence in result.sentences:
        if sentence.untranslated:
            print_warning(f"line {number}: a sentence left untranslated (confidence "
                          f"{sentence.confidence:.2f} below --min-confidence): "
                          f"{sentence.source[:60]}")


def _write_line(sink: NamedOutput, number: int, result: LineResult, n_best: int,
                json_lines: bool) -> None:
    """One input line's output line, flushed at once (pipes, `tail -f`)."""
    _warn_untranslated(number, result)
    hypotheses = result.hypotheses(n_best)
    if json_lines:
        record = {"line": number, "source": result.source, "translation": hypotheses[0],
                  "hypotheses": hypotheses}
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        sink.write("\t".join(hypotheses) + "\n")
    sink.flush()


def _streamable_stdin(text: list[str] | None, file: Path | None, as_json: bool) -> int | None:
    """stdin's descriptor when the input is stdin and can be streamed in windows (not for
    --json, which reports the whole input at once; not for a stdin without a descriptor, such
    as a test runner's); else None. A terminal is refused as before."""
    if text or as_json or (file is not None and str(file) != "-") or sys.stdin is None:
        return None
    try:
        descriptor = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    if file is None and os.isatty(descriptor):
        raise CliError("no text to translate: give TEXT, --file FILE, or pipe text on stdin")
    return descriptor


def _translate_windows(windows: Iterable[tuple[int, list[str]]], sink: NamedOutput,
                       session: Session, settings: Settings, meter: "_Meter",
                       json_lines: bool, after_window: Callable[[], None] | None = None) -> None:
    """Translates and writes each window of lines, in order, warning about its notes first."""
    for first, lines in windows:
        notes = session.notes(lines, settings)
        notes.unknown_script = [first - 1 + n for n in notes.unknown_script]
        notes.already_in_target = [first - 1 + n for n in notes.already_in_target]
        for message in describe_notes(notes, single=False):
            print_warning(message)
        for number, result in enumerate(session.translate_lines(lines, settings),
                                        start=first):
            _write_line(sink, number, result, settings.n_best, json_lines)
            meter.advance(result)
        if after_window is not None:
            after_window()


def _translate_stream(descriptor: int, output: Path | None, errors: InputErrors,
                      settings: Settings, open_session: Callable[[], Session], *,
                      json_lines: bool, window_lines: int, show_progress: bool) -> None:
    """stdin in windows of lines (cli/corpus.py stream_windows), each translated and written
    as soon as it is read: memory flat in the input's length, output flowing with the input."""
    session = open_session()
    session.check(settings)

    def windows() -> Iterator[tuple[int, list[str]]]:
        for first, lines, invalid in stream_windows(descriptor, errors, window_lines):
            if invalid:
                print_warning(InputLines("stdin", [], invalid).warning(errors))
            yield first, lines

    with ExitStack() as stack:
        sink = stack.enter_context(open_output(output))
        meter = stack.enter_context(_Meter(None, 0, show_progress))
        _translate_windows(windows(), sink, session, settings, meter, json_lines)
    meter.summary()


def _translate_file(file: Path, output: Path | None, errors: InputErrors, settings: Settings,
                    open_session: Callable[[], Session], *, json_lines: bool, resume: bool,
                    window_lines: int, show_progress: bool) -> None:
    """`--file FILE` in windows of lines: a first pass counts the lines and checks their
    UTF-8 (errors before the model loads), then each window is translated and written before
    the next is read (cli/corpus.py)."""
    scan = scan_file(file, errors)
    if scan.invalid:
        print_warning(InputLines(str(file), [], scan.invalid).warning(errors))
    session = open_session()
    session.check(settings)
    with ExitStack() as stack:
        # A corpus run into a regular (or new) file can always be resumed: it writes through
        # OUT.partial, kept when the run is interrupted (a device or pipe is written directly).
        resumable = resume or _regular_or_new(output)
        sink = stack.enter_context(resumable_output(output) if resumable
                                   else open_output(output))
        done = sink.done if isinstance(sink, ResumableOutput) else 0
        if done > scan.lines:
            raise CliError(f"{resume_path(output)} has {done} lines, more than the {scan.lines} "
                           f"of {file}: it is not this input's output; delete it")
        meter = _Meter(scan.lines, done, show_progress)
        stack.enter_context(meter)
        # After each window of a --resume run, a kill leaves whole lines to resume from.
        _translate_windows(read_windows(file, errors, window_lines, skip=done), sink, session,
                           settings, meter, json_lines,
                           sink.sync if isinstance(sink, ResumableOutput) else None)
    meter.summary()


def _regular_or_new(output: Path | None) -> bool:
    if output is None or str(output) == "-":
        return False
    try:
        return stat.S_ISREG(os.stat(output).st_mode)
    except FileNotFoundError:
        return True
    except OSError:  # reported when the output is opened
        return False


class _Meter:
    """Progress of a --file run on stderr (lines done / total, lines/s, tokens/s, ETA; no
    total for streamed stdin) and its final summary line; silent unless shown."""

    def __init__(self, total: int | None, done: int, shown: bool) -> None:
        self.total, self.done, self.shown = total, done, shown
        self.lines = self.sentences = self.tokens = 0
        self.started = time.perf_counter()
        self.bar: Progress | None = None

    def __enter__(self) -> "_Meter":
        self.started = time.perf_counter()
        if self.shown:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("translating"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("lines  {task.fields[speed]}"),
                                TimeRemainingColumn(), console=stderr_console(),
                                transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task("translate", total=self.total, completed=self.done,
                                          speed="")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc_info)

    def _seconds(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def advance(self, result: LineResult) -> None:
        self.lines += 1
        self.sentences += len(result.sentences)
        self.tokens += sum(sentence.tokens for sentence in result.sentences)
        if self.bar is not None:
            seconds = self._seconds()
            self.bar.update(self.task, advance=1, speed=f"{self.lines / seconds:.1f} lines/s, "
                            f"{self.tokens / seconds:.0f} tokens/s")

    def summary(self) -> None:
        if not self.shown:
            return
        seconds = self._seconds()
        resumed = f", resumed after line {self.done}" if self.done else ""
        stderr_console().print(
            f"translated {self.lines} lines ({self.sentences} sentences, {self.tokens} tokens"
            f"{resumed}) in {seconds:.2f} s: {self.lines / seconds:.1f} lines/s, "
            f"{self.tokens / seconds:.0f} tokens/s", markup=False, highlight=False,
            soft_wrap=True)


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar in sentences on stderr; yields the function that advances it."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

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
    for number, result in enumerate(results, start=1):
        _warn_untranslated(number, result)
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
