"""Translating corpora on a Ray cluster (issue 17): a Ray Data pipeline of translator actors.

    from pytransformer.distributed import translate_dataset
    summary = translate_dataset(["corpus/*.txt"], "corpus.zh.txt", model="model.ptm",
                                actors=4, threads_per_actor=2)
    summary.lines, summary.lines_per_worker

The inputs (files, directories, globs; text, or Parquet with a text column) are read as one
sequence of lines in sorted file order, cut into read tasks of about `chunk_bytes` at line
boundaries; `map_batches` sends batches of lines to a pool of actors, each of which loads the
memory-mapped model once and translates with its own threads; the driver receives the batches
in input order (Ray Data's `preserve_order`) and writes one output line per input line (empty
lines kept) to a temporary file that replaces `output` only when complete; an `output` that
names a directory (an existing one, or a path ending in "/") gets one file per input file
instead, at the input's path below the inputs' common folder, each put in place as soon as its
last line is written. An actor that dies
is restarted by Ray and its batch retried: no line is lost or written twice (the driver checks
each line's position against the one it expects and fails rather than write a misaligned file).

What an actor does with its lines is a LineTranslator: a picklable object whose load() runs on
the worker and returns a function from lines to translated lines. TranslatorLines (the default)
translates each line as one input with Translator.translate; `pytransformer translate --ray`
passes its own, which translates exactly as `translate --file` does (sentence splitting,
language choice). Ray is an optional dependency: `pip install "pytransformer[ray]"`.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import logging
import os
import socket
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytransformer.filesystem import new_file_mode

# Bytes of input per read task (a task's lines all go to one actor): about a thousand lines of
# prose, several actor batches, so that even a small file keeps every actor busy.
CHUNK_BYTES = 1 << 16
BATCH_LINES = 256
_PARQUET_SUFFIXES = (".parquet", ".pq")


class DistributedError(RuntimeError):
    """The distributed run could not start or finish (no Ray, no input, a failed worker that
    Ray gave up on, output that would not line up with the input)."""


class LineTranslator(Protocol):
    """What an actor translates with: pickled to the workers, load() runs once per actor."""

    def load(self) -> Callable[[list[str]], list[str]]: ...


@dataclass(frozen=True)
class TranslatorLines:
    """Each line translated as one input by pytransformer.Translator(model, threads).translate
    with `options` (target_language, beam_size, ...); an empty line stays empty."""

    model: str | None = None
    threads: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[[list[str]], list[str]]:
        from pytransformer import Translator

        translator = Translator(self.model, threads=self.threads)

        def translate(lines: list[str]) -> list[str]:
            texts = [line for line in lines if line.strip()]
            done = iter(t.text for t in translator.translate(texts, **self.options)) \
                if texts else iter(())
            return [next(done) if line.strip() else "" for line in lines]

        return translate


@dataclass
class DistributedSummary:
    output: str
    lines: int
    lines_per_worker: dict[str, int]  # "host:pid" of each actor -> lines it translated
    actors: int
    seconds: float


def absolute_model(model: str | None) -> str | None:
    """A model named by an existing path made absolute (an actor's working directory is not
    the driver's); a model name (the user models directory) or None as given."""
    return str(Path(model).resolve()) if model is not None and os.path.exists(model) else model


def input_files(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files named by `inputs`, in order: a file as given, a directory's files (recursively,
    hidden ones left out) and a glob's matches, each sorted. DistributedError for a name that
    matches nothing."""
    files: list[Path] = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and
                           not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(match) for match in glob.glob(text, recursive=True)
                           if Path(match).is_file())
        if not found:
            raise DistributedError(f"{text}: no such file, directory or matching file")
        files += [file.resolve() for file in found]  # workers may run in another directory
    kinds = {file.suffix.lower() in _PARQUET_SUFFIXES for file in files}
    if len(kinds) > 1:
        raise DistributedError("give either text files or Parquet files, not both")
    return files


def output_files(files: list[Path], output: str | os.PathLike[str]) -> list[Path] | None:
    """Where each input file's translation goes when `output` names a directory (it exists,
    or its name ends with a path separator): the input's path relative to the inputs' common
    folder, below `output`; None when `output` is one file for all the lines.
    DistributedError where an output would replace an input."""
    text = os.fspath(output)
    if not (text.endswith(("/", os.sep)) or Path(text).is_dir()):
        return None
    root = Path(os.path.commonpath([file.parent for file in files]))
    targets = [Path(text).resolve() / file.relative_to(root) for file in files]
    for file, target in zip(files, targets):
        if target == file:
            raise DistributedError(f"{file}: its output would replace it; give another "
                                   "output directory")
    return targets


def _line_ranges(size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_bytes, size)) for start in range(0, size, chunk_bytes)] \
        or [(0, 0)]


def _read_lines(path: str, start: int, end: int, errors: str) -> Any:
    """The lines whose first byte is in [start, end) of the file, as a pyarrow table of
    (offset, end, text), end being where the next line starts: split on newlines only, a CR
    before one and a leading BOM removed, as `translate --file` reads. (A line starting before
    `start` belongs to the range before.)"""
    import pyarrow as pa

    offsets, ends, texts = [], [], []
    with open(path, "rb") as stream:
        position = start
        if start > 0:
            stream.seek(start - 1)
            position = start - 1 + len(stream.readline())  # to the first line starting here
        stream.seek(position)
        while position < end:
            raw = stream.readline()
            if not raw:
                break
            line = raw.removesuffix(b"\n").removesuffix(b"\r")
            if position == 0:
                line = line.removeprefix(codecs.BOM_UTF8)
            try:
                text = line.decode("utf-8", errors)
            except UnicodeDecodeError as error:
                raise DistributedError(
                    f"{path}: invalid UTF-8 in the line at byte {position} (byte "
                    f"{position + error.start}); errors='replace' translates such lines"
                    ) from None
            offsets.append(position)
            texts.append(text)
            position += len(raw)
            ends.append(position)
    return pa.table({"offset": pa.array(offsets, pa.int64()), "end": pa.array(ends, pa.int64()),
                     "text": pa.array(texts, pa.string())})


def _parquet_rows(path: str, group: int, first_row: int, column: str) -> Any:
    """Row group `group` of a Parquet file as (offset, end, text): offset the row's index in
    the file, end the next row's; a null text is an empty line (translated as one)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    texts = pq.ParquetFile(path).read_row_group(group, columns=[column]).column(column)
    rows = pa.array(range(first_row, first_row + len(texts)), pa.int64())
    return pa.table({"offset": rows, "end": pc.add(rows, 1),
                     "text": pc.fill_null(texts.cast(pa.string()), "")})


def _input_sizes(files: list[Path], parquet: bool) -> list[int]:
    """What _Alignment counts a file's end in: its bytes (text) or its rows (Parquet)."""
    if not parquet:
        return [file.stat().st_size for file in files]
    import pyarrow.parquet as pq

    return [pq.ParquetFile(file).metadata.num_rows for file in files]


def _datasource(files: list[Path], parquet: bool, chunk_bytes: int, column: str,
                errors: str) -> Any:
    """The inputs as read tasks in order: text files cut into line-aligned byte ranges of about
    chunk_bytes, Parquet files into their row groups. Each row: file (index), offset, end,
    text."""
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    def pieces() -> list[tuple[Callable[[], Any], int, str]]:
        """(read function, estimated bytes, file) of each read task."""
        found: list[tuple[Callable[[], Any], int, str]] = []
        for file in files:
            path = str(file)
            if parquet:
                import pyarrow.parquet as pq

                metadata = pq.ParquetFile(file).metadata
                first = 0
                for group in range(metadata.num_row_groups):
                    found.append((lambda path=path, group=group, first=first:
                                  _parquet_rows(path, group, first, column),
                                  metadata.row_group(group).total_byte_size, path))
                    first += metadata.row_group(group).num_rows
            else:
                for start, end in _line_ranges(file.stat().st_size, chunk_bytes):
                    found.append((lambda path=path, start=start, end=end:
                                  _read_lines(path, start, end, errors), end - start, path))
        return found

    class OrderedInputs(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            return sum(file.stat().st_size for file in files)

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            index_of = {str(file): index for index, file in enumerate(files)}
            tasks = []
            for read_piece, size, path in pieces():
                def read(read_piece=read_piece, index=index_of[path]) -> list[Any]:
                    import pyarrow as pa

                    table = read_piece()
                    return [table.append_column(
                        "file", pa.array([index] * table.num_rows, pa.int32()))]
                tasks.append(ReadTask(read, BlockMetadata(num_rows=None, size_bytes=size,
                                                          exec_stats=None,
                                                          input_files=(path,))))
            return tasks

    return OrderedInputs()


class _Worker:
    """The actor of map_batches: loads the LineTranslator once, translates batches."""

    translator: LineTranslator  # set by _worker_class

    def __init__(self) -> None:
        self._translate = self.translator.load()
        self._name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        lines = [str(text) for text in batch["text"]]
        translated = self._translate(lines)
        if len(translated) != len(lines):
            raise DistributedError(f"the line translator returned {len(translated)} lines for "
                                   f"{len(lines)}")
        out = dict(batch)
        out["translation"] = np.array(translated, dtype=object)
        out["worker"] = np.array([self._name] * len(lines), dtype=object)
        return out


class _Alignment:
    """Checks that the driver receives every line of the inputs once, in order: each line
    starts where the previous one ended (a byte offset in a text file, a row of a Parquet
    file), and each file is read to its end (`sizes`)."""

    def __init__(self, files: list[Path], sizes: list[int],
                 file_done: Callable[[int], None] | None = None) -> None:
        self._sizes = sizes
        self._names = [str(file) for file in files]
        self._file, self._next = 0, 0
        self._file_done = file_done  # called with each file's index once all its lines came

    def check(self, files: Sequence[int], offsets: Sequence[int], ends: Sequence[int]) -> None:
        for file, offset, end in zip(files, offsets, ends):
            while int(file) > self._file:
                self._end_of_file()
                self._file, self._next = self._file + 1, 0
            if int(file) != self._file or int(offset) != self._next:
                raise DistributedError(
                    f"{self._names[min(int(file), len(self._names) - 1)]}: got the line at "
                    f"{int(offset)} where the one at {self._next} of "
                    f"{self._names[self._file]} was due; the output was not written")
            self._next = int(end)

    def _end_of_file(self) -> None:
        if self._next != self._sizes[self._file]:
            raise DistributedError(f"{self._names[self._file]}: lines after {self._next} "
                                   "never came back; the output was not written")
        if self._file_done is not None:
            self._file_done(self._file)

    def finish(self) -> None:
        while True:
            self._end_of_file()
            if self._file + 1 == len(self._sizes):
                return
            self._file, self._next = self._file + 1, 0


class _TextSink:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, sources: Sequence[str], translations: Sequence[str]) -> None:
        self._stream.write("".join(f"{text}\n" for text in translations).encode("utf-8"))

    def close(self) -> None:
        self._stream.flush()
        os.fsync(self._stream.fileno())


class _ParquetSink:
    """Rows of (source column, translation), in order, written as they come."""

    def __init__(self, stream: Any, column: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._column = column
        self._stream = stream
        self._writer = pq.ParquetWriter(stream, pa.schema([(column, pa.string()),
                                                           ("translation", pa.string())]))

    def write(self, sources: Sequence[str], translations: Sequence[str]) -> None:
        self._writer.write_table(self._pa.table({
            self._column: self._pa.array([str(text) for text in sources], self._pa.string()),
            "translation": self._pa.array([str(text) for text in translations],
                                          self._pa.string())}))

    def close(self) -> None:
        self._writer.close()
        self._stream.flush()
        os.fsync(self._stream.fileno())


def _worker_class(translator: LineTranslator) -> type[_Worker]:
    """A _Worker class carrying `translator` with its definition: a restarted actor needs no
    constructor argument kept in the object store."""
    return type("TranslatorActor", (_Worker,), {"translator": translator})


def translate_dataset(inputs: Sequence[str | os.PathLike[str]] | str,
                      output: str | os.PathLike[str], model: str | None = None, *,
                      translator: LineTranslator | None = None, actors: int = 1,
                      threads_per_actor: int = 1, batch_lines: int = BATCH_LINES,
                      chunk_bytes: int = CHUNK_BYTES, column: str = "text",
                      errors: str = "strict", address: str | None = None,
                      progress: Callable[[int], None] | None = None,
                      **options: Any) -> DistributedSummary:
    """Translates the lines of `inputs` on Ray into `output`, one line per input line, in order.

    inputs: files, directories or globs of UTF-8 text (or of Parquet files, whose `column`
    holds the text). output: a text file, or a Parquet file (name ending .parquet) with the
    columns `column` and "translation"; or a directory (existing, or named with a trailing
    "/"), which gets one such file per input file, at its path below the inputs' common
    folder (output_files), each in place as soon as it is complete. model / options: for the default TranslatorLines
    (options as Translator.translate takes them); or `translator`, any LineTranslator.
    actors: translator actors, each with threads_per_actor CPUs and compute threads.
    errors: "strict" (a line of invalid UTF-8 stops the run, naming it) or "replace".
    address: the Ray cluster to join (None: the running one, else a local one; "auto" as
    ray.init takes it). progress(lines) is called on the driver as lines are written.
    Raises DistributedError; ray is imported only here (the `ray` extra)."""
    import time

    try:
        import ray
    except ImportError:
        raise DistributedError("Ray is not installed: pip install \"pytransformer[ray]\" "
                               "(or \"ray[data]\")") from None
    if actors < 1 or threads_per_actor < 1 or batch_lines < 1 or chunk_bytes < 1:
        raise DistributedError("actors, threads_per_actor, batch_lines and chunk_bytes must be "
                               "at least 1")
    if errors not in ("strict", "replace"):
        raise DistributedError(f"errors must be 'strict' or 'replace', got {errors!r}")
    files = input_files([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)
    parquet_in = files[0].suffix.lower() in _PARQUET_SUFFIXES
    target = Path(output)
    targets = output_files(files, output)
    parquet_out = (parquet_in if targets is not None
                   else target.suffix.lower() in _PARQUET_SUFFIXES)
    if translator is None:
        translator = TranslatorLines(absolute_model(model), threads_per_actor, dict(options))
    elif model is not None or options:
        raise DistributedError("give a model and options, or a translator, not both")
    started = time.monotonic()
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                 logging_level=logging.WARNING)
    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars,
             context.print_on_execution_start)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = context.print_on_execution_start = False
    ray_data_log = logging.getLogger("ray.data")
    saved_level = ray_data_log.level
    ray_data_log.setLevel(logging.WARNING)  # no INFO lines per run on the user's terminal
    try:
        # Reading is light: it must not wait for CPUs the actors hold (a 2-CPU cluster with two
        # actors would never schedule it).
        dataset = ray.data.read_datasource(
            _datasource(files, parquet_in, chunk_bytes, column, errors), num_cpus=0)
        translated = dataset.map_batches(
            _worker_class(translator), batch_size=batch_lines,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=threads_per_actor)  # Ray Data restarts a dead actor and retries its batch
        counts, written = _write(translated, target, targets, files,
                                 _input_sizes(files, parquet_in), parquet_out, column, progress)
    finally:
        (context.execution_options.preserve_order, context.enable_progress_bars,
         context.print_on_execution_start) = saved
        ray_data_log.setLevel(saved_level)
    return DistributedSummary(output=str(target), lines=written,
                              lines_per_worker=dict(sorted(counts.items())), actors=actors,
                              seconds=time.monotonic() - started)


class _Output:
    """A temporary file beside `target` (text lines, or Parquet rows) that replaces `target`
    when complete()d; discard() removes it."""

    def __init__(self, target: Path, parquet: bool, column: str) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, self.temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                                  dir=target.parent)
        self.stream = os.fdopen(handle, "wb")
        try:
            self.sink = _ParquetSink(self.stream, column) if parquet else _TextSink(self.stream)
        except BaseException:
            self.discard()
            raise

    def write(self, sources: Sequence[str], translations: Sequence[str]) -> None:
        self.sink.write(sources, translations)

    def complete(self) -> None:
        self.sink.close()
        self.stream.close()
        os.chmod(self.temporary, new_file_mode())
        os.replace(self.temporary, self.target)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
        with contextlib.suppress(OSError):
            os.unlink(self.temporary)


def _write(translated: Any, target: Path, targets: list[Path] | None, files: list[Path],
           sizes: list[int], parquet_out: bool, column: str,
           progress: Callable[[int], None] | None) -> tuple[Counter[str], int]:
    """Writes the translated batches as they come, checked by an _Alignment, into temporary
    files that replace their targets when complete: `target`, once every line is written, or
    with `targets` (one per input file) each input's file as soon as its last line is.
    Returns (lines per worker, lines)."""
    counts: Counter[str] = Counter()
    written = 0
    outputs: dict[int, _Output] = {}

    def output_for(index: int) -> _Output:
        key = index if targets is not None else 0
        if key not in outputs:
            outputs[key] = _Output(targets[index] if targets is not None else target,
                                   parquet_out, column)
        return outputs[key]

    def file_done(index: int) -> None:
        if targets is not None:
            output_for(index).complete()
            del outputs[index]

    alignment = _Alignment(files, sizes, file_done)
    try:
        for batch in translated.iter_batches(batch_size=None, batch_format="numpy"):
            indices = batch["file"]
            start = 0
            while start < len(indices):  # a batch may hold lines of several files
                stop = start + 1
                while stop < len(indices) and indices[stop] == indices[start]:
                    stop += 1
                alignment.check(indices[start:stop], batch["offset"][start:stop],
                                batch["end"][start:stop])
                output_for(int(indices[start])).write(batch["text"][start:stop],
                                                      batch["translation"][start:stop])
                start = stop
            counts.update(str(worker) for worker in batch["worker"])
            written += len(batch["translation"])
            if progress is not None:
                progress(written)
        alignment.finish()
        if targets is None:
            output_for(0).complete()
            outputs.clear()
    except BaseException:
        for output in outputs.values():
            output.discard()
        raise
    return counts, written
