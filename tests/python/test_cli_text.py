"""The CLI's text handling without a model: sentence splitting and rejoining, script detection,
target-language choice, input decoding and atomic output files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytransformer.cli.atomic import atomic_text_output
from pytransformer.cli.errors import CliError
from pytransformer.cli.languages import LanguageChoice, same_language
from pytransformer.cli import text
from pytransformer.cli.text import (MAX_SEGMENT_BYTES, join_sentences, segment_size,
                                    split_sentences)
from pytransformer.languages import dominant_script, find_language
from pytransformer.cli.translate_command import InputErrors, InputLines, decode_input


@pytest.mark.parametrize(
    ("line", "sentences"),
    [
        ("Hello world. How are you? I am fine!",
         ["Hello world.", "How are you?", "I am fine!"]),
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
        ("Pi is 3.14 exactly. Yes.", ["Pi is 3.14 exactly.", "Yes."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("Wait... what? No way", ["Wait... what?", "No way"]),
        ("e.g. this one. and that", ["e.g. this one. and that"]),
        ("你好。你叫什么名字？我很好", ["你好。", "你叫什么名字？", "我很好"]),
        ("中文句子。English sentence. 再来一句！",
         ["中文句子。", "English sentence.", "再来一句！"]),
        ("  padded  ", ["padded"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_sentences(line: str, sentences: list[str]) -> None:
    assert split_sentences(line) == sentences


@pytest.mark.parametrize(
    "line, count",
    [
        ("Mr. Smith arrived at 5 p.m. He was tired.", 2),
        ("We met at 9 a.m. The bus was late.", 2),
        ("She works for the U.S. government.", 1),
        ("See No. 5 on the list. It is red.", 2),
        ("He lives on Main St. near the park.", 1),
        ("Bring fruit, e.g. apples. Also bring water.", 2),
        ("Use a tool, i.e. a hammer. Then rest.", 2),
        ("Dr. Brown and Mrs. Green came. They left early.", 2),
        ("It costs 3.50 dollars. That is cheap.", 2),
        ("J. K. Rowling wrote it. It sold well.", 2),
        ("The meeting is at 10 a.m. tomorrow.", 1),
        ("Prof. Lee teaches math. He is kind.", 2),
        ("Really?! Yes.", 2),
    ],
)
def test_abbreviations_neither_split_nor_swallow_sentences(line: str, count: int) -> None:
    assert len(split_sentences(line)) == count, split_sentences(line)


ABBREVIATIONS = ["p.m.", "a.m.", "U.S.", "No.", "St.", "e.g.", "i.e.", "Dr.", "Mrs.", "Mr.",
                 "etc.", "vs.", "Jan.", "Inc.", "Ph.D.", "U.K.", "approx.", "Fig.", "3.5",
                 "...", "?!", "“Yes.”", "(see above.)", "。", "！", "？"]


def test_every_character_of_a_line_is_in_its_sentences() -> None:
    """Over many lines mixing abbreviations, numbers, quotes and CJK punctuation, the
    sentences hold every non-space character of the line, in order."""
    import random

    rng = random.Random(5)
    words = ["He", "arrived", "at", "5", "the", "park", "She", "was", "tired", "我们", "去了",
             "Tom", "left", "early", "it", "rained"]
    for _ in range(2000):
        tokens = [rng.choice(words + ABBREVIATIONS) for _ in range(rng.randint(1, 30))]
        line = " ".join(tokens) if rng.random() < 0.8 else "".join(tokens)
        sentences = split_sentences(line)
        assert "".join("".join(s.split()) for s in sentences) == "".join(line.split()), line
        assert all(s == s.strip() and s for s in sentences), sentences


def test_overlong_sentences_are_cut_below_the_limit() -> None:
    words = ", ".join(f"clause number {i} of a very long sentence" for i in range(60))
    pieces = split_sentences(words)
    assert len(pieces) > 1
    assert all(segment_size(piece) <= MAX_SEGMENT_BYTES for piece in pieces)
    assert join_sentences(pieces).replace(",", "") == words.replace(",", "")
    per_piece = MAX_SEGMENT_BYTES // 3  # a Han character is 3 bytes of UTF-8
    han = "字" * (3 * per_piece)
    assert split_sentences(han) == ["字" * per_piece] * 3


@pytest.mark.parametrize("line", [
    "字" * 1000,
    "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(1000)),  # Han, no punctuation
    "".join(chr(0xAC00 + (i * 7919) % 11000) for i in range(1000)),  # Hangul
    "😀" * 1000,
    "𠀀𠀁𠀂" * 300,  # CJK extension B: 4 bytes each
    "1234567890" * 100,
    "é" * 1000,
    "a" * 3000,
    "ゟ" * 1000,  # NFKC: "より", 6 bytes
    "\ufdfa" * 100,  # NFKC: 18 Arabic letters and spaces, 33 bytes
    " ".join(["word"] * 1000),
    "，".join(["我们今天去了公园"] * 100) + "。",
])
def test_every_segment_fits_the_byte_limit_and_keeps_every_character(line: str) -> None:
    pieces = split_sentences(line)
    assert all(0 < segment_size(piece) <= MAX_SEGMENT_BYTES for piece in pieces)
    assert "".join("".join(piece.split()) for piece in pieces) == "".join(line.split())


def test_segment_size_counts_the_normalised_bytes() -> None:
    assert segment_size("abc") == 3
    assert segment_size("字é") == 3 + 2
    assert segment_size("ゟ") == len("より".encode("utf-8"))
    assert segment_size("Ａ") == 1  # a full-width letter normalises to ASCII


def test_a_long_line_is_segmented_in_linear_time(monkeypatch) -> None:
    """pysbd's time grows with the square of its input (300,000 characters took 85 s, 60,000
    3 s): it is given chunks of at most PYSBD_CHUNK_CHARS characters, with the sentences it
    finds in the whole line."""
    sentence = "Mr. Smith arrived at 5 p.m. He was tired. "
    line = sentence * 1500  # 63,000 characters
    segmenter = text._english_segmenter()
    read: list[str] = []
    segment = segmenter.segment

    def recording(chunk: str) -> list[str]:
        read.append(chunk)
        return segment(chunk)

    monkeypatch.setattr(segmenter, "segment", recording)
    assert split_sentences(line) == ["Mr. Smith arrived at 5 p.m.", "He was tired."] * 1500
    assert max(map(len, read)) <= text.PYSBD_CHUNK_CHARS
    assert "".join(read).replace(" ", "") == line.replace(" ", "")  # pysbd read all of it


def test_join_uses_no_space_between_cjk_text() -> None:
    assert join_sentences(["Hello.", "World."]) == "Hello. World."
    assert join_sentences(["你好。", "我很好。"]) == "你好。我很好。"
    assert join_sentences(["你好。", "Hello."]) == "你好。Hello."
    assert join_sentences([]) == ""


def test_dominant_script() -> None:
    assert dominant_script("The cat sat on the mat.") == "latin"
    assert dominant_script("猫坐在垫子上。") == "cjk"
    assert dominant_script("我喜欢 Python") == "cjk"
    assert dominant_script("1234 !?") is None


def test_language_codes_match_across_iso_639_forms() -> None:
    assert same_language("zh", ">>zho<<")
    assert same_language("EN", "eng")
    assert same_language("zh", "zh_Hant")
    assert not same_language("en", "zh")


def test_nllb_and_m2m100_codes_are_found_from_any_iso_639_form() -> None:
    nllb = ["eng_Latn", "zho_Hans", "zho_Hant", "arb_Arab", "ary_Arab", "kas_Arab", "kas_Deva"]
    assert find_language("zh", nllb) == "zho_Hans"  # Simplified unless asked otherwise
    assert find_language("zh-TW", nllb) == find_language("zho_hant", nllb) == "zho_Hant"
    assert find_language("ar", nllb) == "arb_Arab"  # Modern Standard Arabic, not Moroccan
    assert find_language("ary", nllb) == "ary_Arab"
    assert find_language("__en__", nllb) == find_language("EN", nllb) == "eng_Latn"
    assert find_language("fr", nllb) is None
    with pytest.raises(ValueError, match="kas_Arab, kas_Deva"):
        find_language("ks", nllb)
    assert find_language("zh", ["__en__", "__zh__"]) == "__zh__"
    assert find_language("zho_Hans", ["__en__", "__zh__"]) == "__zh__"
    assert not same_language("zho_Hans", "zho_Hant")
    choice = LanguageChoice(selectable=tuple(nllb), sources=tuple(nllb), needs_source=True)
    assert choice.resolve_fixed(None, "zh") == "zho_Hans"  # the source: detected per sentence
    with pytest.raises(CliError, match="cannot tell which language '1, 2, 3' is in: pass --from"):
        choice.source_token(None, "1, 2, 3")
    assert choice.resolve_fixed("en", "zh") == "zho_Hans"
    assert choice.source_token("en") == "eng_Latn"


def test_two_language_model_targets_the_other_script() -> None:
    choice = LanguageChoice(selectable=("en", "zh"))
    assert choice.target_for("The cat sat.", None, None) == "zh"
    assert choice.target_for("猫坐着。", None, None) == "en"
    assert choice.target_for("The cat sat.", None, "en") == "en"
    assert choice.target_for("猫坐着。", "en", None) == "zh"
    assert choice.target_for("anything", None, "zho") == "zh"
    with pytest.raises(CliError, match="unknown target language 'de'.*en, zh"):
        choice.target_for("The cat sat.", None, "de")
    with pytest.raises(CliError, match="unknown source language 'fr'"):
        choice.target_for("The cat sat.", "fr", None)


def test_many_target_languages_need_to() -> None:
    choice = LanguageChoice(selectable=("de", "fr", "es"))
    with pytest.raises(CliError, match="pass --to"):
        choice.target_for("Hello.", None, None)
    assert choice.target_for("Hello.", None, "fr") == "fr"


def test_single_direction_model_needs_no_language() -> None:
    choice = LanguageChoice(selectable=(), sources=("en",), targets=("de",))
    assert choice.target_for("Hello.", None, None) is None
    assert choice.target_for("Hello.", "en", "de") is None
    with pytest.raises(CliError, match="unknown target language 'fr'"):
        choice.target_for("Hello.", None, "fr")


def test_decode_input_keeps_empty_lines_and_reports_bad_utf8() -> None:
    for errors in InputErrors:
        assert decode_input(b"a\n\nb\n", "f", errors) == InputLines("f", ["a", "", "b"], [])
        assert decode_input(b"a\r\nb", "f", errors) == InputLines("f", ["a", "b"], [])
        assert decode_input(b"\xef\xbb\xbfbom\n", "f", errors) == InputLines("f", ["bom"], [])
        assert decode_input(b"", "f", errors) == InputLines("f", [], [])
        assert decode_input(b"\n", "f", errors) == InputLines("f", [""], [])
    with pytest.raises(CliError, match=r"input.txt: invalid UTF-8 on line 2 \(byte 0xff\)"):
        decode_input(b"fine\nbad \xff byte\n", "input.txt")
    # Line by line once a line is bad: BOM, CRs and empty lines handled as in the fast path.
    mixed = b"\xef\xbb\xbfone\r\n\nbad \xff\r\n\xe9t\xe9\nlast"
    assert decode_input(mixed, "f", InputErrors.replace) == InputLines(
        "f", ["one", "", "bad \ufffd", "\ufffdt\ufffd", "last"], [3, 4])
    assert decode_input(mixed, "f", InputErrors.skip) == InputLines(
        "f", ["one", "", "", "", "last"], [3, 4])


def test_atomic_output_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with atomic_text_output(target) as stream:
        stream.write("first\n")
        assert not target.exists()
    assert target.read_text() == "first\n"

    with pytest.raises(RuntimeError), atomic_text_output(target) as stream:
        stream.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "first\n"  # the old content survives a failed run
    assert os.listdir(tmp_path) == ["out.txt"]  # and no temporary file is left
