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
from pytransformer.cli.text import split_sentences

# Everyday input a new user types first (issue 9): training/everyday.py, which the trainer also
# checks before it ships a run.
from training.everyday import EN_TO_ZH, ZH_TO_EN  # noqa: E402

# Two- and three-sentence paragraphs, through the command line (which splits them into
# sentences): every sentence's content word must be there.
PARAGRAPHS = [
    ("I like tea. My brother likes coffee.", (("茶",), ("咖啡",))),
    ("Good morning. How are you? I am fine.", (("早",), ("你",), ("我",))),
    ("我喜欢茶。我哥哥喜欢咖啡。", (("tea",), ("coffee",))),
    ("你好。你叫什么名字？", (("hello", "hi"), ("name",))),
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
    assert Path(translator.path).stat().st_size <= 60 * 1024 * 1024


@pytest.mark.parametrize("source, words", EN_TO_ZH)
def test_english_to_chinese(translator, source: str, words: tuple[str, ...]) -> None:
    (result,) = translator.translate([source], target_language="zh")
    assert any(word in result.text for word in words), result.text


@pytest.mark.parametrize("source, words", ZH_TO_EN)
def test_chinese_to_english(translator, source: str, words: tuple[str, ...]) -> None:
    (result,) = translator.translate([source], target_language="en")
    assert any(word in result.text.lower() for word in words), result.text


def test_paragraphs_keep_every_sentence(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "PYTRANSFORMER_MODEL"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytransformer", "translate"],
        input="".join(source + "\n" for source, _ in PARAGRAPHS), capture_output=True,
        text=True, timeout=300, cwd=tmp_path, env=environment)
    assert completed.returncode == 0, completed.stderr
    for (source, sentences), line in zip(PARAGRAPHS, completed.stdout.splitlines()):
        for words in sentences:
            assert any(word in line.lower() for word in words), (source, line)


def test_chinese_output_has_fullwidth_punctuation(translator) -> None:
    (result,) = translator.translate(["How are you?"], target_language="zh")
    assert result.text.endswith("？") and "?" not in result.text, result.text


def test_chinese_output_is_simplified(translator) -> None:
    opencc = pytest.importorskip("opencc")

    simplify = opencc.OpenCC("t2s")
    texts = [source for source, _ in EN_TO_ZH]
    for result in translator.translate(texts, target_language="zh"):
        assert simplify.convert(result.text) == result.text, result.text


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


def test_the_python_api_and_the_command_line_translate_alike(translator, tmp_path) -> None:
    """One rule for both (issue 16): without a target language, the API chooses it by script
    as the CLI does, so the same lines give the same translations."""
    lines = [source for source, _ in EN_TO_ZH + ZH_TO_EN if len(split_sentences(source)) == 1]
    api = [result.text for result in translator.translate(lines)]
    environment = {key: value for key, value in os.environ.items() if key != "PYTRANSFORMER_MODEL"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytransformer", "translate"], input="\n".join(lines) + "\n",
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=environment)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == api
    assert "".join(translator.stream(lines[0])) == translator.translate(
        [lines[0]], beam_size=1)[0].text
