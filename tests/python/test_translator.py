"""The public Python API on converted tiny models (tests/data/marian fixtures, the aren
transliteration CTranslate2 model)."""

from __future__ import annotations

import json

import pytest

import pytransformer
from pytransformer import ModelFormatError, Translation, Translator

from conftest import AREN_MODEL, MARIAN_FIXTURES


@pytest.fixture(scope="module")
def translator(converted_marian) -> Translator:
    return Translator(converted_marian("base"))


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return json.loads((MARIAN_FIXTURES / "base" / "expected.json").read_text())["cases"]


def test_public_names():
    for name in ("Translator", "Translation", "Hypothesis", "ModelFormatError",
                 "ConversionError", "convert_marian", "convert_ctranslate2", "info"):
        assert hasattr(pytransformer, name)
    information = pytransformer.info()
    assert information["version"] and information["cpu_count"] >= 1


def test_text_in_text_out_matches_transformers(translator, cases):
    texts = [case["text"] for case in cases]
    translations = translator.translate(texts, beam_size=1)
    assert [t.text for t in translations] == [case["greedy_text"] for case in cases]
    assert all(isinstance(t, Translation) for t in translations)


def test_n_best_and_scores(translator, cases):
    texts = [case["text"] for case in cases[:4]]
    translations = translator.translate(texts, beam_size=4, n_best=4, return_scores=True)
    for translation, case in zip(translations, cases):
        assert len(translation.hypotheses) == 4
        assert translation.text == translation.hypotheses[0].text
        assert translation.score == translation.hypotheses[0].score
        assert [h.score for h in translation.hypotheses] == pytest.approx(
            case["beam_scores"], abs=1e-4)
    assert translator.translate(texts[:1], beam_size=2)[0].score is None


def test_model_defaults_are_used(translator, cases):
    # The fixture's generation_config: 4 beams, 12 new tokens.
    default = translator.translate([cases[0]["text"]], n_best=4)[0]
    assert len(default.hypotheses) == 4
    assert all(len(h.tokens) <= 12 for h in default.hypotheses)


def test_streaming_yields_the_translated_text(translator, cases):
    for case in cases[:5]:
        pieces = list(translator.stream(case["text"]))
        expected = translator.translate([case["text"]], beam_size=1)[0].text
        assert "".join(pieces) == expected
        assert len(pieces) >= 1


def test_stream_can_be_closed_early(translator, cases):
    stream = translator.stream(cases[0]["text"], max_length=12)
    first = next(stream)
    stream.close()  # stops the worker thread; must not hang
    assert first


def test_empty_inputs(translator):
    assert translator.translate([]) == []
    result = translator.translate(["", "   "])
    assert [t.text for t in result] == ["", ""] and result[0].hypotheses == []
    assert list(translator.stream("")) == []
    assert translator.translate_tokens([[]])[0].text == ""


def test_over_long_input_is_truncated_with_a_warning(translator):
    text = " ".join(["people"] * (translator.max_positions * 2))
    with pytest.warns(UserWarning, match="truncated"):
        result = translator.translate([text], beam_size=1, max_length=3)
    assert len(result[0].tokens) <= 3


@pytest.mark.parametrize("bad", ["caf\udce9", "\ud800"])
def test_invalid_unicode_is_a_value_error(translator, bad):
    with pytest.raises(ValueError, match="UTF-8"):
        translator.translate([bad])
    with pytest.raises(ValueError, match="UTF-8"):
        list(translator.stream(bad))


def test_bytes_and_wrong_types(translator):
    with pytest.raises(ValueError, match="bytes"):
        translator.translate([b"abc"])
    with pytest.raises(TypeError):
        translator.translate("a single string")


def test_corrupt_model_names_the_file(tmp_path, converted_marian):
    path = tmp_path / "corrupt.ptm"
    data = bytearray(converted_marian("base").read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelFormatError, match="corrupt.ptm"):
        Translator(path)
    with pytest.raises(FileNotFoundError):
        Translator(tmp_path / "missing.ptm")


def test_unknown_target_language_is_rejected(translator):
    assert translator.target_languages == []
    with pytest.raises(ValueError, match="target language"):
        translator.translate(["hello"], target_language="fra")


def test_pre_tokenized_input_without_sentencepiece(tmp_path):
    from pytransformer import convert_ctranslate2

    path = convert_ctranslate2(AREN_MODEL, tmp_path / "aren.ptm")
    translator = Translator(path)
    assert translator.metadata["tokenizer.type"] == "none"
    result = translator.translate_tokens([["آ", "ت", "ز", "م", "و", "ن"]], beam_size=2)
    assert result[0].tokens == list("atzmon")
    assert translator.translate(["آ ت ش ي س و ن"], beam_size=2)[0].text == "a c h i s o n"


def test_sampling_is_reproducible(translator, cases):
    options = dict(sampling=True, temperature=1.5, top_k=20, seed=7, max_length=8)
    first = translator.translate([cases[0]["text"]], **options)[0].tokens
    again = translator.translate([cases[0]["text"]], **options)[0].tokens
    assert first == again
