"""The default en<->zh model shipped inside the package (weights/model.ptm, trained by
training/train.py): it is installed, loads offline, and translates short everyday sentences in
both directions to something sensible. Assertions are on content words, not exact strings, so
a better retrained model still passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pytransformer

EN_TO_ZH = [
    ("I don't know.", "知道"),
    ("I want to go home.", "家"),
    ("The weather is nice today.", "天"),
    ("He is my friend.", "朋友"),
]
ZH_TO_EN = [
    ("我爱你。", "love"),
    ("他是我的朋友。", "friend"),
    ("这本书很有意思。", "book"),
    ("我的狗很可爱。", "dog"),
]


@pytest.fixture(scope="module")
def translator() -> pytransformer.Translator:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTRANSFORMER_MODEL", raising=False)
        path = pytransformer.default_model_path()
        assert path is not None and path.is_file(), "the package ships no default model"
        assert path.parent.name == "weights" and path.parent.parent.name == "pytransformer"
        return pytransformer.Translator()


def test_default_model_is_the_bidirectional_en_zh_model(translator) -> None:
    assert set(translator.target_languages) == {">>en<<", ">>zh<<"}
    assert Path(translator.path).stat().st_size <= 30 * 1024 * 1024


@pytest.mark.parametrize("source, word", EN_TO_ZH)
def test_english_to_chinese(translator, source: str, word: str) -> None:
    (result,) = translator.translate([source], target_language="zh")
    assert word in result.text, result.text


@pytest.mark.parametrize("source, word", ZH_TO_EN)
def test_chinese_to_english(translator, source: str, word: str) -> None:
    (result,) = translator.translate([source], target_language="en")
    assert word in result.text.lower(), result.text


def test_command_line_picks_the_direction_from_the_script(tmp_path: Path) -> None:
    """The README's first command, without --model: each line goes into the other language."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTRANSFORMER_MODEL"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytransformer", "translate"],
        input="我爱你。\n\nHe is my friend.\n", capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env=environment)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.split("\n")
    assert "love" in lines[0].lower() and lines[1] == "" and "朋友" in lines[2], completed.stdout
