"""Memory stays flat in the length of one line (issue 16): a line's sentences are translated in
batches of a bounded number of sentences, not in one call. Measured with the default model,
greedy: one line of 1,250 sentences (15k characters) peaked at 212 MB when the whole line was
one call, 109 MB in batches, against 98 MB for a line of 32 sentences."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytransformer.bench.corpus_memory import PEAK_RSS_CHILD

def _peak_kib(sentences: int, tmp_path) -> int:
    environment = {key: value for key, value in os.environ.items()
                   if key != "PYTRANSFORMER_MODEL"}
    completed = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_CHILD, "translate", "--beam", "1"],
        input="I like tea. " * sentences + "\n", capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env=environment)
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.splitlines()) == 1
    return int(completed.stderr.strip().splitlines()[-1])


def test_a_long_line_is_translated_in_the_memory_of_a_short_one(tmp_path) -> None:
    if sys.platform != "linux":
        pytest.skip("ru_maxrss is in KiB on Linux only")
    short = _peak_kib(32, tmp_path)
    long = _peak_kib(1250, tmp_path)
    assert long - short < 40 * 1024, f"{short} KiB for 32 sentences, {long} KiB for 1250"
