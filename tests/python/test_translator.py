"""The public Python API on converted tiny models (tests/data/marian fixtures, the aren
transliteration CTranslate2 model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
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
    for name in ("Translator", "Translation", "Hypothesis", "TranslationStream", "Attention",
                 "ModelInfo", "describe_model", "default_model_path", "ModelFormatError",
                 "ModelNotFoundError", "resolve_model",
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


# ---- streams: token counts, beams --------------------------------------------------------


def test_stream_counts_the_generated_tokens(translator, cases):
    expected = translator.translate([cases[1]["text"]], beam_size=1)[0]
    with translator.stream(cases[1]["text"]) as stream:
        counts = []
        text = ""
        for piece in stream:
            text += piece
            counts.append(stream.token_count)
    assert text == expected.text
    assert counts == sorted(counts) and counts[-1] <= len(expected.tokens)
    assert stream.token_count == len(expected.tokens)


@pytest.mark.parametrize("beam_size", [3, None])  # None: the model's default (4)
def test_stream_with_a_beam_yields_the_whole_text_at_the_end(translator, cases, beam_size):
    assert translator.metadata["generation.beam_size"] == 4
    expected = translator.translate([cases[2]["text"]], beam_size=beam_size)[0]
    stream = translator.stream(cases[2]["text"], beam_size=beam_size)
    assert stream.token_count == 0  # nothing runs before the first increment is asked for
    assert list(stream) == [expected.text]
    assert stream.token_count == len(expected.tokens)


def test_stream_rejects_an_unknown_language_at_once(translator):
    with pytest.raises(ValueError, match="target language"):
        translator.stream("hello", target_language="fra")


# ---- attention ----------------------------------------------------------------------------


def test_attention_matches_transformers(converted_marian, cases):
    """Translator.attention on its own translation vs MarianMTModel's cross-attentions for the
    same source and decoder inputs (the rows: the steps that produced each target piece)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    translator = Translator(converted_marian("base"))
    reference = transformers.MarianMTModel.from_pretrained(MARIAN_FIXTURES / "base").eval()
    reference.set_attn_implementation("eager")
    tokenizer = translator.tokenizer
    compared = 0
    for case in cases[:4]:
        attention = translator.attention(case["text"], beam_size=1)
        best = translator.translate([case["text"]], beam_size=1)[0]
        assert attention.text == best.text == case["greedy_text"]
        assert attention.target_pieces[:len(best.tokens)] == best.tokens
        assert attention.target_pieces[len(best.tokens):] in ([], ["</s>"])
        source_ids = tokenizer.encode(case["text"])
        assert attention.source_pieces == [tokenizer.source_vocab[i] for i in source_ids]
        produced = [tokenizer.target_id(piece) for piece in attention.target_pieces]
        decoder_inputs = [tokenizer.decoder_start_id] + produced[:-1]
        with torch.no_grad():
            output = reference(input_ids=torch.tensor([source_ids]),
                               decoder_input_ids=torch.tensor([decoder_inputs]),
                               output_attentions=True)
        expected = np.stack([a[0].numpy() for a in output.cross_attentions])
        assert attention.weights.shape == expected.shape == (
            2, 4, len(attention.target_pieces), len(attention.source_pieces))
        np.testing.assert_allclose(attention.weights, expected, atol=1e-5)
        compared += 1
    assert compared == 4


def test_attention_rows_are_distributions_and_follow_the_options(translator, cases):
    attention = translator.attention(cases[0]["text"], beam_size=2, max_length=3)
    expected = translator.translate([cases[0]["text"]], beam_size=2, max_length=3)[0]
    assert attention.text == expected.text
    assert len(attention.target_pieces) == len(expected.tokens) + (
        1 if expected.hypotheses[0].finished else 0)
    assert attention.weights.dtype == np.float32
    np.testing.assert_allclose(attention.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert (attention.weights >= 0).all()
    with pytest.raises(ValueError, match="empty"):
        translator.attention("  ")
    with pytest.raises(ValueError, match="target language"):
        translator.attention("hello", target_language="fra")
    with pytest.raises(ValueError, match="UTF-8"):
        translator.attention("caf\udce9")


# ---- model description, tensor types, default model -----------------------------------------


def _dtype_counts_from_bytes(path) -> dict[str, int]:
    """Tensor dtypes counted from the file's bytes (the directory parsed in Python)."""
    from collections import Counter

    from pytransformer.format.constants import DType
    from tiny_models import file_layout

    data = path.read_bytes()
    names = {DType.F32: "f32", DType.F16: "f16", DType.BF16: "bf16", DType.INT8: "int8"}
    return dict(Counter(names[DType(data[t.dtype_offset])] for t in file_layout(data).tensors))


@pytest.mark.parametrize("quantize", [None, "f16", "int8"])
def test_describe_model_and_tensor_dtypes(tmp_path, quantize):
    from tiny_models import vocabulary, write_random_model

    path = tmp_path / "m.ptm"
    pieces = vocabulary(30) + [">>xx<<", ">>yy<<"]
    metadata = write_random_model(path, seed=3, quantize=quantize, d_model=32, decoder_layers=3,
                                  source_vocab_size=32, target_vocab_size=32,
                                  target_languages=[">>xx<<", ">>yy<<"],
                                  extra={"vocab.source": pieces, "vocab.target": pieces})
    expected = _dtype_counts_from_bytes(path)
    # int8: f16 attention and embeddings beside the int8 FFN and output projection.
    assert len(expected) == {None: 1, "f16": 2, "int8": 3}[quantize]
    info = pytransformer.describe_model(path)
    assert info.tensor_dtypes == expected == Translator(path).tensor_dtypes
    assert info.path == path and info.size_bytes == path.stat().st_size
    assert info.format_version == 1
    assert (info.name, info.architecture, info.tokenizer) == (
        metadata["general.name"], "transformer-seq2seq", metadata["tokenizer.type"])
    assert (info.d_model, info.encoder_layers, info.decoder_layers) == (32, 2, 3)
    assert (info.encoder_heads, info.decoder_heads) == (metadata["model.encoder_heads"],
                                                        metadata["model.decoder_heads"])
    assert (info.source_vocab_size, info.target_vocab_size, info.max_positions) == (
        metadata["model.source_vocab_size"], metadata["model.target_vocab_size"],
        metadata["model.max_positions"])
    assert info.target_languages == [">>xx<<", ">>yy<<"] == Translator(path).target_languages
    assert info.metadata == Translator(path).metadata


def test_describe_model_errors(tmp_path, converted_marian):
    with pytest.raises(FileNotFoundError, match="missing.ptm"):
        pytransformer.describe_model(tmp_path / "missing.ptm")
    corrupt = tmp_path / "corrupt.ptm"
    corrupt.write_bytes(converted_marian("base").read_bytes()[:5000])
    with pytest.raises(ModelFormatError, match="corrupt.ptm"):
        pytransformer.describe_model(corrupt)


def test_default_model_from_the_environment(monkeypatch, tmp_path, converted_marian):
    from pytransformer import model_files

    path = converted_marian("base")
    monkeypatch.setenv("PYTRANSFORMER_MODEL", str(path))
    assert pytransformer.default_model_path() == path
    assert Translator().path == path
    missing = tmp_path / "nothing-here.ptm"
    monkeypatch.setenv("PYTRANSFORMER_MODEL", str(missing))
    for call in (pytransformer.default_model_path, Translator):
        with pytest.raises(pytransformer.ModelNotFoundError,
                           match=r"^\$PYTRANSFORMER_MODEL: unknown model .*nothing-here.ptm"):
            call()
    # Without the variable: the model installed in the package (pytransformer/weights/).
    monkeypatch.delenv("PYTRANSFORMER_MODEL")
    package = Path(pytransformer.__file__).resolve().parent
    assert model_files.PACKAGED_MODEL_PATH == package / "weights" / "model.ptm"
    monkeypatch.setattr(model_files, "PACKAGED_MODEL_PATH", missing)
    assert pytransformer.default_model_path() is None
    with pytest.raises(FileNotFoundError, match="no default model is installed"):
        Translator()
    monkeypatch.setattr(model_files, "PACKAGED_MODEL_PATH", path)
    assert pytransformer.default_model_path() == path
    assert Translator().path == path


def test_a_model_is_named_alike_in_the_api_and_the_cli(monkeypatch, tmp_path, converted_marian):
    """Issue 10: a path, or a name in the user models directory, for Translator(),
    $PYTRANSFORMER_MODEL and --model alike (the CLI accepted names the API rejected)."""
    from typer.testing import CliRunner

    from pytransformer import model_files
    from pytransformer.cli.main import app

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    models = model_files.user_models_dir()
    assert models == tmp_path / "data" / "pytransformer" / "models"
    models.mkdir(parents=True)
    shutil.copyfile(converted_marian("base"), models / "mine.ptm")
    expected = Translator(models / "mine.ptm").translate(["Hi."])[0].text
    for name in ("mine", "mine.ptm"):
        assert pytransformer.resolve_model(name) == models / "mine.ptm"
        assert Translator(name).translate(["Hi."])[0].text == expected
        monkeypatch.setenv("PYTRANSFORMER_MODEL", name)
        assert Translator().path == models / "mine.ptm"
        monkeypatch.delenv("PYTRANSFORMER_MODEL")
        result = CliRunner().invoke(app, ["translate", "-m", name, "Hi."])
        assert result.stdout == expected + "\n"
    with pytest.raises(pytransformer.ModelNotFoundError, match="unknown model 'yours'"):
        Translator("yours")
    with pytest.raises(pytransformer.ModelNotFoundError, match="is a directory"):
        Translator(models)


# ---- metadata read by the API and the core --------------------------------------------------


def test_fullwidth_punctuation_follows_cjk_when_the_file_asks_for_it():
    from pytransformer.tokenizer import Tokenizer, restore_fullwidth_punctuation
    from tiny_models import tiny_metadata, vocabulary

    vocab = vocabulary(36) + ["你", "好", "?", "Tom", ","]
    plain = tiny_metadata(source_vocab_size=41, target_vocab_size=41,
                          extra={"vocab.source": vocab, "vocab.target": vocab})
    flagged = Tokenizer(dict(plain, **{"tokenizer.fullwidth_punctuation": True}))
    assert Tokenizer(plain).decode([36, 37, 38]) == "你 好 ?"
    assert flagged.decode([36, 37, 38]) == "你 好？"
    assert flagged.decode([39, 40, 36, 38]) == "Tom , 你？"  # a comma after Latin text stays
    assert restore_fullwidth_punctuation("你好, 汤姆! 现在3:30了吗?") == "你好，汤姆！现在3:30了吗？"
    assert restore_fullwidth_punctuation("Hi, Tom! http://a.b/?q=1") == "Hi, Tom! http://a.b/?q=1"


def test_the_model_file_is_read_once(tmp_path, converted_marian):
    """Translator takes its metadata from the file its model was built from (Model.file), so a
    file replaced between two reads cannot pair one file's tokenizer with another's weights."""
    from pytransformer import _core

    path = tmp_path / "model.ptm"
    shutil.copyfile(converted_marian("base"), path)
    model = _core.Model(str(path))
    metadata = _core.ModelFile(str(path)).metadata
    path.unlink()  # nothing is read again
    model_file = model.file
    del model
    assert model_file.metadata == metadata and model_file.path == str(path)
    assert model_file.tensor_info("dec.out_proj.weight")[0] == "f32"


def test_renormalize_logits_default_comes_from_the_file(tmp_path):
    """generation.renormalize_logits is parsed by the core's config: the file's value is the
    default of every search, and an explicit option still overrides it."""
    from pytransformer import _core
    from tiny_models import write_random_model

    options = dict(seed=4, d_model=32, suppressed_ids=[3, 4, 5, 6], beam_size=3,
                   max_length=6)
    plain = tmp_path / "plain.ptm"
    write_random_model(plain, **options)
    flagged = tmp_path / "flagged.ptm"
    write_random_model(flagged, extra={"generation.renormalize_logits": True}, **options)
    text = ["▁w7 ▁w8 ▁w9"]
    ours = Translator(flagged).translate(text, return_scores=True, n_best=3)[0]
    without = Translator(plain).translate(text, return_scores=True, n_best=3)[0]
    ids = Translator(plain).tokenizer.encode(text[0])
    plain_model = _core.Model(str(plain))
    explicit = _core.generate(plain_model, [ids], _core.SearchOptions(
        plain_model, n_best=3, renormalize_logits=True))[0]
    assert [h.score for h in ours.hypotheses] == pytest.approx([h[1] for h in explicit],
                                                               abs=1e-6)
    assert [h.score for h in ours.hypotheses] != pytest.approx(
        [h.score for h in without.hypotheses], abs=1e-4)
    flagged_model = _core.Model(str(flagged))
    overridden = _core.generate(flagged_model, [ids], _core.SearchOptions(
        flagged_model, n_best=3, renormalize_logits=False))[0]
    assert [h[1] for h in overridden] == pytest.approx([h.score for h in without.hypotheses],
                                                       abs=1e-6)
    # The core's config parser type-checks it (the writer asks it, so no such file is written).
    with pytest.raises(ModelFormatError, match="generation.renormalize_logits: expected bool"):
        write_random_model(tmp_path / "wrong.ptm", extra={"generation.renormalize_logits": 1},
                           **options)


def test_source_unk_id_is_checked(tmp_path):
    from tiny_models import write_random_model

    good = tmp_path / "good.ptm"
    write_random_model(good, extra={"tokens.source_unk_id": 3})
    assert Translator(good).tokenizer.encode("▁w4 nonsense") == [4, 3, 1]
    bad = tmp_path / "bad.ptm"
    write_random_model(bad, extra={"tokens.source_unk_id": 999})
    with pytest.raises(ModelFormatError, match="bad.ptm.*tokens.source_unk_id"):
        Translator(bad)


# ---- the target language when none is given (issue 16) ---------------------------------------

BIDIRECTIONAL_LINES = ["▁w3 ▁w4", "你 好", "▁w5 ▁w6 ▁w7", "好 你 你", "▁w8 你", "▁w9 ▁w10 ▁w11"]


def test_without_a_target_language_the_script_chooses_it(bidirectional):
    """A model with >>en<< and >>zh<< gets the CLI's choice (pytransformer.languages): CJK text
    into English, other text into Chinese; before, it got no language token at all, an input it
    was never trained on."""
    from pytransformer import _core

    translator = Translator(bidirectional)
    targets = {"▁w3 ▁w4": "zh", "你 好": "en"}
    for text, target in targets.items():
        chosen = translator.translate([text])[0]
        assert chosen.tokens == translator.translate([text], target_language=target)[0].tokens
        # The test means something only if the token changes the output.
        without_token = _core.generate(_core.Model(str(bidirectional)),
                                       [translator.tokenizer.encode(text)])[0][0][0]
        assert chosen.tokens != translator.tokenizer.target_pieces(without_token)
        assert translator.translate_tokens([text.split()])[0].tokens == chosen.tokens
        assert "".join(translator.stream(text)) == translator.translate(
            [text], beam_size=1, target_language=target)[0].text
        assert translator.attention(text).source_pieces[0] == f">>{target}<<"
    # A text that starts with a language token keeps it, as MarianTokenizer does.
    assert translator.attention(">>en<< ▁w3 ▁w4").source_pieces[:2] == [">>en<<", "▁w3"]


def test_the_api_and_the_command_line_translate_alike(bidirectional):
    from typer.testing import CliRunner

    from pytransformer import model_files
    from pytransformer.cli.main import app

    translator = Translator(bidirectional)
    api = [translation.text for translation in translator.translate(BIDIRECTIONAL_LINES)]
    result = CliRunner().invoke(app, ["translate", "-m", str(bidirectional)],
                                input="\n".join(BIDIRECTIONAL_LINES) + "\n",
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == api
    streamed = ["".join(translator.stream(line)) for line in BIDIRECTIONAL_LINES]
    assert streamed == [t.text for t in translator.translate(BIDIRECTIONAL_LINES, beam_size=1)]


def test_a_model_with_one_target_language_always_uses_it(tmp_path):
    from tiny_models import vocabulary, write_random_model

    path = tmp_path / "one.ptm"
    pieces = vocabulary(30) + [">>de<<"]
    write_random_model(path, seed=3, source_vocab_size=31, target_vocab_size=31,
                       target_languages=[">>de<<"],
                       extra={"vocab.source": pieces, "vocab.target": pieces})
    assert Translator(path).attention("▁w3 ▁w4").source_pieces[0] == ">>de<<"


def test_several_target_languages_need_one_named(tmp_path):
    from tiny_models import vocabulary, write_random_model

    path = tmp_path / "three.ptm"
    languages = [">>de<<", ">>fr<<", ">>es<<"]
    pieces = vocabulary(30) + languages
    write_random_model(path, seed=3, source_vocab_size=33, target_vocab_size=33,
                       target_languages=languages,
                       extra={"vocab.source": pieces, "vocab.target": pieces})
    translator = Translator(path)
    for call in (lambda: translator.translate(["▁w3"]), lambda: translator.stream("▁w3"),
                 lambda: translator.attention("▁w3")):
        with pytest.raises(ValueError, match=r">>de<<, >>fr<<, >>es<<.*pass target_language"):
            call()
    assert translator.translate(["▁w3"], target_language="fr")[0].hypotheses
