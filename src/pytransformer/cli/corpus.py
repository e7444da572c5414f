"""Corpus input and output for `translate --file FILE`: memory flat in the file's size.

Standard input is read in windows too (stream_windows), handed on as soon as no more input is
ready, so a pipe is translated as it flows.

A first, fast pass (scan_file) counts the lines and checks their UTF-8, so that `--errors
strict` still stops before anything is translated and the progress bar knows its total. The
file is then read in windows of lines (read_windows), each translated and written, in input
order, before the next is read.

`--resume` output (resumable_output) goes through a stable temporary file beside the target,
`FILE.partial`, flushed and fsynced after every window and kept when the run is interrupted in
any way (Ctrl-C, SIGTERM, an error, SIGKILL): it then holds a prefix of whole output lines (a
line cut by SIGKILL is dropped when resuming). A later `--resume` counts its complete lines,
skips that many input lines, appends, and renames it over FILE once complete. Windows always
end at multiples of the window size, counted from the file's first line, so a resumed run
translates the very batches an uninterrupted one does: the output is byte-identical.
"""

from __future__ import annotations

import codecs
import os
import select
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from pytransformer.cli.atomic import (NamedOutput, os_error_reason, put_in_place,
                                      remove_stale_partials, replaceable_target)
from pytransformer.cli.errors import CliError, OutputError

# Lines read, translated and written at a time (`--window-lines`, a hidden option for tests).
WINDOW_LINES = 2000
RESUME_SUFFIX = ".partial"
_BLOCK_BYTES = 1 << 20


class InputErrors(str, Enum):
    """What `translate` does with a line that is not valid UTF-8."""
    strict = "strict"  # stop with an error naming the line; nothing is translated
    replace = "replace"  # translate it with each bad byte as U+FFFD
    skip = "skip"  # leave its output line empty (the output stays aligned)


def decode_line(raw: bytes, number: int, name: str, errors: InputErrors) -> tuple[str, bool]:
    """One line's bytes (no newline, no CR) -> (text, whether it was invalid UTF-8). Under
    `strict` an invalid line raises CliError naming it and its first bad byte."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError as error:
        if errors is InputErrors.strict:
            bad = raw[error.start: error.start + 1].hex()
            raise CliError(f"{name}: invalid UTF-8 on line {number} (byte 0x{bad}); "
                           "--errors replace or skip translates such lines") from None
        return (raw.decode("utf-8", "replace") if errors is InputErrors.replace else ""), True


def _raw_lines(path: Path) -> Iterator[bytes]:
    """The file's lines as bytes, split on newlines only (a final newline ends the last line),
    without the newline, a CR before it, or a leading BOM."""
    with open(path, "rb") as stream:
        first = True
        for raw in stream:
            if first:
                raw = raw.removeprefix(codecs.BOM_UTF8)
                first = False
            yield raw.removesuffix(b"\n").removesuffix(b"\r")


@dataclass
class FileScan:
    lines: int = 0
    invalid: list[int] = field(default_factory=list)  # 1-based numbers of invalid lines


def scan_file(path: Path, errors: InputErrors) -> FileScan:
    """The first pass: counts the lines and finds those that are not UTF-8 (CliError on the
    first under `strict`)."""
    if path.is_dir():
        raise CliError(f"{path} is a directory")
    scan = FileScan()
    for scan.lines, raw in enumerate(_raw_lines(path), start=1):
        if not raw.isascii() and decode_line(raw, scan.lines, str(path), errors)[1]:
            scan.invalid.append(scan.lines)
    return scan


def read_windows(path: Path, errors: InputErrors, window_lines: int,
                 skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """(1-based number of the first line, the lines) of each window after the first `skip`
    lines; every window but the last ends at a multiple of `window_lines` lines."""
    window: list[str] = []
    first = skip + 1
    for number, raw in enumerate(_raw_lines(path), start=1):
        if number <= skip:
            continue
        window.append(decode_line(raw, number, str(path), errors)[0])
        if number % window_lines == 0:
            yield first, window
            first, window = number + 1, []
    if window:
        yield first, window


def stream_windows(descriptor: int, errors: InputErrors, window_lines: int,
                   name: str = "stdin") -> Iterator[tuple[int, list[str], list[int]]]:
    """(1-based number of the first line, the lines, numbers of the invalid ones) of each
    window of lines read from a pipe or file descriptor: a window is handed on when it is full
    or when no more input is ready without waiting, so a slow writer (`tail -f`, a producer
    line by line) sees each line translated as it comes, and a fast one gets full windows.
    Lines are split on newlines only, a CR before one and a leading BOM dropped, as `--file`
    reads; under `strict` an invalid line raises CliError naming it (the lines before it have
    been handed on)."""
    pending: list[bytes] = []
    tail = b""
    number = 0
    ended = False

    def window(raw_lines: list[bytes]) -> tuple[int, list[str], list[int]]:
        nonlocal number
        start = number + 1
        lines, invalid = [], []
        for raw in raw_lines:
            if number == 0:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            number += 1
            line, bad = decode_line(raw.removesuffix(b"\r"), number, name, errors)
            lines.append(line)
            if bad:
                invalid.append(number)
        return start, lines, invalid

    while True:
        while pending and (ended or len(pending) >= window_lines or not _ready(descriptor)):
            yield window(pending[:window_lines])
            del pending[:window_lines]
        if ended:
            return
        chunk = os.read(descriptor, _BLOCK_BYTES)
        if chunk:
            *complete, tail = (tail + chunk).split(b"\n")
            pending += complete
        else:
            ended = True
            if tail:
                pending.append(tail)


def _ready(descriptor: int) -> bool:
    """Whether reading the descriptor would return at once (data or end of input)."""
    return bool(select.select([descriptor], [], [], 0)[0])


def resume_path(output: Path) -> Path:
    """Where `--resume` keeps the partial output of `output`: beside the file it reaches."""
    target = Path(os.path.realpath(output))
    return target.with_name(target.name + RESUME_SUFFIX)


def _complete_lines(partial: Path) -> int:
    """Counts the whole lines of `partial` and cuts off a trailing partial line."""
    lines = keep = offset = 0
    with open(partial, "rb") as stream:
        while block := stream.read(_BLOCK_BYTES):
            count = block.count(b"\n")
            if count:
                lines += count
                keep = offset + block.rfind(b"\n") + 1
            offset += len(block)
    if keep != offset:
        os.truncate(partial, keep)
    return lines


class ResumableOutput(NamedOutput):
    """The `--resume` output: `done` lines were already written by an earlier run; sync()
    makes what has been written durable."""

    def __init__(self, stream, name: str, done: int) -> None:
        super().__init__(stream, name)
        self.done = done

    def sync(self) -> None:
        self.flush()
        try:
            os.fsync(self.fileno())
        except OSError as error:
            raise OutputError(self.name, os_error_reason(error)) from None


@contextmanager
def resumable_output(path: Path) -> Iterator[ResumableOutput]:
    """Appends to `FILE.partial` (created if absent, a trailing cut line removed); on normal
    exit renames it over `path` (the regular file it reaches, keeping its permissions); on any
    exception leaves it for the next `--resume`."""
    name = str(path)
    partial = resume_path(path)
    target = partial.with_name(partial.name.removesuffix(RESUME_SUFFIX))
    existing = replaceable_target(name, target, "--resume needs a regular file")
    remove_stale_partials(target)  # what a killed run writing through a temporary name left
    try:
        done = _complete_lines(partial) if partial.exists() else 0
        stream = open(partial, "a", encoding="utf-8", newline="\n")
    except OSError as error:
        raise OutputError(name, f"cannot write {partial}: {os_error_reason(error)}") from None
    with stream:
        output = ResumableOutput(stream, name, done)
        yield output  # an exception leaves the partial file for --resume
        output.sync()
    put_in_place(name, partial, target, existing)
