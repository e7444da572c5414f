"""The CLI's sentences fit the model (issue 16): no segment it sends has more source positions
than the model holds, so none is truncated and none of its text lost. split_sentences caps a
segment at MAX_SEGMENT_BYTES of UTF-8 because every piece covers at least one byte; checked here
on the real tokenizers, and end to end with the default model."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

import pytransformer
from pytransformer.cli.text import MAX_SEGMENT_BYTES, segment_size, split_sentences

# Lines whose characters are one token or more each: Han without punctuation, Hangul, emoji
# and CJK extension B (byte fallback: 3-4 tokens a character), digits, accented letters.
HARD_LINES = [
    "字" * 1000,
    "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(1000)),
    "".join(chr(0xAC00 + (i * 7919) % 11000) for i in range(1000)),
    "😀" * 1000,
    "".join(chr(0x20000 + (i * 7919) % 40000) for i in range(1000)),
    "1234567890" * 100,
    "é" * 1000,
    "naïve café " * 100,
    "ゟ㍿ﬁ" * 300,  # NFKC expands these: より, 株式会社, fi
    "我们今天去了公园，" * 100 + "。",
]


@pytest.fixture(scope="module")
def default_translator() -> pytransformer.Translator:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTRANSFORMER_MODEL", raising=False)
        return pytransformer.Translator()


def _random_text(rng: random.Random) -> str:
    ranges = [(0x20, 0x7E), (0xC0, 0x17F), (0x391, 0x3C9), (0x410, 0x44F), (0x3040, 0x30FF),
              (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x3300, 0x33FF), (0xFB00, 0xFDFF),
              (0x300, 0x36F), (0x1F600, 0x1F64F), (0x20000, 0x2A6DF)]
    chars = []
    for _ in range(rng.randint(1, 120)):
        low, high = rng.choice(ranges)
        chars.append(chr(rng.randint(low, high)))
    return "".join(chars)


def test_a_piece_covers_at_least_one_byte(default_translator, marian) -> None:
    """What the byte limit rests on: a text gives at most one piece per byte of its UTF-8 (each
    character as its NFKC form, as segment_size counts), plus the word-start mark SentencePiece
    puts first."""
    rng = random.Random(11)
    for tokenizer in (default_translator.tokenizer, pytransformer.Translator(marian).tokenizer):
        for _ in range(1000):
            text = _random_text(rng)
            assert len(tokenizer.source_pieces(text)) <= segment_size(text) + 1, text


@pytest.mark.parametrize("line", HARD_LINES, ids=range(len(HARD_LINES)))
def test_every_segment_fits_the_default_model(default_translator, line: str) -> None:
    tokenizer = default_translator.tokenizer
    limit = default_translator.max_positions
    assert MAX_SEGMENT_BYTES + 3 <= limit  # the pieces, word-start mark, language token, EOS
    for segment in split_sentences(line):
        assert len(tokenizer.encode(segment, target_language="en")) <= limit, segment


def test_the_command_line_truncates_no_segment(tmp_path) -> None:
    """Before the byte limit, 400 characters of Han text were one segment of 402 positions for
    a model of 256: the model was given a truncated segment, and the rest of it was lost."""
    environment = {key: value for key, value in os.environ.items()
                   if key != "PYTRANSFORMER_MODEL"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytransformer", "translate", "--beam", "1", "--max-length", "2"],
        input="\n".join(HARD_LINES[:2]) + "\n", capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env=environment)
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.splitlines()) == 2
    assert "truncated" not in completed.stderr, completed.stderr
