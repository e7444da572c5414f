"""Mutation fuzzing of the reader (a short run of tests/fuzz/fuzz_format.py): every mutated file
either opens, with every accessor working, or raises ModelFormatError; never another exception,
never a crash."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))

from fuzz_format import run  # noqa: E402


def test_mutated_files_open_or_raise_model_format_error(tmp_path):
    outcomes = run(iterations=5000, seed=20, directory=tmp_path)
    assert sum(outcomes.values()) == 5000
    # The mutations reach many different checks and some survivors are fully read back.
    assert outcomes["ok"] > 0
    assert len(outcomes) > 40, outcomes
