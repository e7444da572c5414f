"""Peak memory of `translate --file` against the file's size (issue 17): synthetic files of
several line counts translated with the tiny random model (so that a million lines stays a
matter of minutes), each in a fresh process whose peak RSS is read from getrusage.

    report = measure_corpus_memory(line_counts=(10_000, 1_000_000))
    print(format_corpus_memory_report(report)); report.flat

`pytransformer bench --corpus-memory` prints it and exits 1 when the largest file's peak is
more than FLAT_RATIO times the smallest's.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FLAT_RATIO = 1.25
CORPUS_MEMORY_REPORT_KIND = "pytransformer-corpus-memory"
DEFAULT_LINE_COUNTS = (10_000, 1_000_000)
_WORDS = ("the a house cat dog runs big small red tree and of to in is it").split()
# `python -c PEAK_RSS_CHILD ARGS...` runs the CLI with ARGS, then prints its peak RSS
# (ru_maxrss: KiB on Linux) as the last line of stderr (also tests/python/test_cli_memory.py).
PEAK_RSS_CHILD = """\
import resource, sys
from pytransformer.cli.main import main
try:
    main()
except SystemExit as done:
    if done.code:
        raise
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


class CorpusMemoryError(RuntimeError):
    """A translation being measured failed, or gave the wrong number of lines."""


@dataclass
class CorpusRun:
    lines: int
    file_mb: float
    peak_rss_mb: float
    seconds: float


@dataclass
class CorpusMemoryReport:
    model: str
    runs: list[CorpusRun]
    flat_ratio: float = FLAT_RATIO
    kind: str = field(default=CORPUS_MEMORY_REPORT_KIND)

    @property
    def ratio(self) -> float:
        """Peak of the largest file over the peak of the smallest."""
        ordered = sorted(self.runs, key=lambda run: run.lines)
        return ordered[-1].peak_rss_mb / ordered[0].peak_rss_mb

    @property
    def flat(self) -> bool:
        return self.ratio <= self.flat_ratio

    def to_json(self) -> str:
        data = asdict(self)
        data.update(ratio=self.ratio, flat=self.flat)
        return json.dumps(data, indent=2)


def write_synthetic_corpus(path: Path, lines: int, seed: int = 0) -> None:
    """`lines` short lines of random words (every 10th empty), written in chunks."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as stream:
        chunk = []
        for number in range(lines):
            chunk.append("" if number % 10 == 9 else " ".join(
                rng.choice(_WORDS) for _ in range(rng.randint(1, 6))) + ".")
            if len(chunk) == 10_000:
                stream.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            stream.write("\n".join(chunk) + "\n")


def _tiny_model(cache_dir: str | None) -> Path:
    """The tiny random Marian model, converted once into the bench's cache (as `bench --random
    tiny` converts it: atomically, reused while the directory is unchanged)."""
    from pytransformer.bench.random_model import (TINY_SHAPE, cached_random_marian,
                                                  default_cache_dir)
    from pytransformer.bench.runner import OURS, _prepare

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    directory = cached_random_marian(TINY_SHAPE, 0, cache)
    return _prepare(OURS, "float32", "marian", directory, cache)[0]


def measure_corpus_memory(line_counts: tuple[int, ...] = DEFAULT_LINE_COUNTS,
                          cache_dir: str | None = None) -> CorpusMemoryReport:
    """Translates a synthetic file of each line count with the tiny model (greedy, at most 8
    tokens a sentence) in a fresh process each; raises CorpusMemoryError if one fails."""
    if len(line_counts) < 2 or min(line_counts) < 1:
        raise ValueError(f"give two or more positive line counts, got {line_counts}")
    model = _tiny_model(cache_dir)
    runs = []
    with tempfile.TemporaryDirectory(prefix="pytransformer-corpus-") as scratch:
        for lines in line_counts:
            source, output = Path(scratch) / f"{lines}.txt", Path(scratch) / f"{lines}.out"
            write_synthetic_corpus(source, lines)
            started = time.perf_counter()
            completed = subprocess.run(
                [sys.executable, "-c", PEAK_RSS_CHILD, "translate", "--model", str(model), "--file",
                 str(source), "--output", str(output), "--max-length", "8", "--beam", "1",
                 "--quiet"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
            seconds = time.perf_counter() - started
            if completed.returncode != 0:
                raise CorpusMemoryError(f"translating {lines} lines failed: "
                                        f"{completed.stderr.strip()}")
            with open(output, "rb") as stream:
                written = sum(1 for _ in stream)
            if written != lines:
                raise CorpusMemoryError(f"{lines} lines gave {written} output lines")
            peak_kib = int(completed.stderr.strip().splitlines()[-1])
            runs.append(CorpusRun(lines, source.stat().st_size / 1e6, peak_kib / 1024, seconds))
            source.unlink()
            output.unlink()
    return CorpusMemoryReport(model=str(model), runs=runs)


def format_corpus_memory_report(report: CorpusMemoryReport) -> str:
    rows = ["translate --file, tiny random model: peak RSS by file size"]
    for run in report.runs:
        rows.append(f"  {run.lines:>9} lines ({run.file_mb:7.1f} MB): peak {run.peak_rss_mb:6.1f} "
                    f"MB, {run.seconds:6.1f} s")
    verdict = "flat" if report.flat else "NOT flat"
    rows.append(f"  largest / smallest peak: {report.ratio:.2f} ({verdict}: at most "
                f"{report.flat_ratio:.2f})")
    return "\n".join(rows)
