"""convert_ctranslate2 against CTranslate2 itself: the aren transliteration model (binary
version 2, TransformerBase, pre-norm) and Marian models written by CTranslate2's own
Transformers converter in float32, float16 and int8 (binary version 6, post-norm, swish, stored
positions, a decoder starting from a zero embedding)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.convert import ConversionError, convert_ctranslate2
from pytransformer.convert.ctranslate2 import load_ctranslate2, read_model_bin
from pytransformer.format import read_model
from pytransformer.tokenizer import Tokenizer

from conftest import AREN_MODEL, MARIAN_FIXTURES

ctranslate2 = pytest.importorskip("ctranslate2", reason="the ctranslate2 package is needed")
SCORE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def aren(tmp_path_factory):
    path = convert_ctranslate2(AREN_MODEL, tmp_path_factory.mktemp("aren") / "aren.ptm")
    metadata, _ = read_model(path)
    return _core.Model(str(path)), Tokenizer(metadata), metadata


def test_aren_metadata(aren):
    _, _, metadata = aren
    assert metadata["model.pre_norm"] is True
    assert metadata["model.position_frequencies"] == "tensor2tensor"
    assert metadata["model.position_offset"] == 1
    assert metadata["model.encoder_heads"] == 8  # TransformerBase stores no num_heads
    assert metadata["tokenizer.type"] == "none"
    assert metadata["generation.search_convention"] == "ctranslate2"
    assert metadata["vocab.target"][metadata["tokens.decoder_start_id"]] == "<s>"
    # CTranslate2 appends <unk> to vocabularies that lack it.
    assert metadata["vocab.source"][-1] == "<unk>"


@pytest.mark.parametrize("source, expected", [("آ ت ز م و ن", "a t z m o n"),
                                              ("آ ت ش ي س و ن", "a c h i s o n")])
def test_aren_known_outputs(aren, source, expected):
    model, tokenizer, _ = aren
    result = _core.generate(model, [tokenizer.encode(source)], _core.SearchOptions(model,
                                                                                   beam_size=2))
    assert tokenizer.decode(result[0][0][0]) == expected


def compare_with_ctranslate2(model, tokenizer, reference, sources, beam_sizes):
    compared = 0
    for tokens in sources:
        for beam_size in beam_sizes:
            n_best = min(beam_size, 3)
            expected = reference.translate_batch([tokens], beam_size=beam_size,
                                                 num_hypotheses=n_best, return_scores=True,
                                                 max_decoding_length=30)[0]
            ours = _core.generate(model, [tokenizer.encode_pieces(tokens)],
                                  _core.SearchOptions(model, beam_size=beam_size, n_best=n_best,
                                                      max_length=30))[0]
            assert [tokenizer.target_pieces(h[0]) for h in ours] == expected.hypotheses, \
                (tokens, beam_size)
            np.testing.assert_allclose([h[1] for h in ours], expected.scores,
                                       atol=SCORE_TOLERANCE, rtol=0)
            compared += 1
    return compared


def test_aren_against_ctranslate2(aren):
    model, tokenizer, metadata = aren
    reference = ctranslate2.Translator(str(AREN_MODEL), device="cpu")
    letters = [t for t in metadata["vocab.source"] if t not in ("<blank>", "<s>", "</s>", "<unk>")]
    rng = random.Random(0)
    sources = [[rng.choice(letters) for _ in range(rng.randint(1, 12))] for _ in range(30)]
    assert compare_with_ctranslate2(model, tokenizer, reference, sources, (1, 2, 4)) == 90


@pytest.fixture(scope="module", params=[None, "float16", "int8"])
def marian_via_ctranslate2(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ct2") / "model"
    converter = ctranslate2.converters.TransformersConverter(str(MARIAN_FIXTURES / "base"))
    converter.convert(str(directory), quantization=request.param)
    path = convert_ctranslate2(directory, directory.parent / "model.ptm")
    metadata, _ = read_model(path)
    return directory, request.param, _core.Model(str(path)), Tokenizer(metadata), metadata


def test_marian_converted_by_ctranslate2(marian_via_ctranslate2):
    directory, quantization, model, tokenizer, metadata = marian_via_ctranslate2
    assert metadata["model.pre_norm"] is False and metadata["model.activation"] == "swish"
    assert metadata["model.position_frequencies"] == "paper"
    assert metadata["model.position_offset"] == 0
    start = metadata["tokens.decoder_start_id"]
    assert start in metadata["generation.suppressed_ids"]
    if quantization is not None:
        # Dequantized weights: CTranslate2 computes in float16 / int8, so only the shapes of
        # the model are compared, not its outputs.
        return
    reference = ctranslate2.Translator(str(directory), device="cpu", compute_type="float32")
    vocab = [t for t in metadata["vocab.source"] if not t.startswith("<")]
    rng = random.Random(1)
    sources = [[rng.choice(vocab) for _ in range(rng.randint(1, 10))] + ["</s>"]
               for _ in range(15)]
    assert compare_with_ctranslate2(model, tokenizer, reference, sources, (1, 3)) == 30


def test_quantized_weights_are_dequantized(tmp_path):
    directory = tmp_path / "int8"
    ctranslate2.converters.TransformersConverter(str(MARIAN_FIXTURES / "base")).convert(
        str(directory), quantization="int8")
    _, _, variables = read_model_bin(directory / "model.bin")
    weight = variables["encoder/layer_0/ffn/linear_0/weight"].value
    scale = variables["encoder/layer_0/ffn/linear_0/weight_scale"].value
    assert weight.dtype == np.int8
    _, tensors = load_ctranslate2(directory)
    np.testing.assert_allclose(tensors["enc.0.ffn_up.weight"],
                               weight.astype(np.float32) / scale[:, None], rtol=1e-6)


def test_argos_package_layout_embeds_sentencepiece(tmp_path):
    package = tmp_path / "package"
    (package / "model").mkdir(parents=True)
    for name in ("model.bin", "source_vocabulary.txt", "target_vocabulary.txt"):
        (package / "model" / name).write_bytes((AREN_MODEL / name).read_bytes())
    blob = (MARIAN_FIXTURES / "base" / "source.spm").read_bytes()
    (package / "sentencepiece.model").write_bytes(blob)
    metadata, _ = load_ctranslate2(package)
    assert metadata["tokenizer.type"] == "sentencepiece"
    assert metadata["tokenizer.source_model"] == blob == metadata["tokenizer.target_model"]


def test_broken_model_bin_is_a_conversion_error(tmp_path):
    directory = tmp_path / "broken"
    directory.mkdir()
    data = (AREN_MODEL / "model.bin").read_bytes()
    (directory / "model.bin").write_bytes(data[:1000])
    with pytest.raises(ConversionError, match="truncated"):
        read_model_bin(directory / "model.bin")
    (directory / "model.bin").write_bytes((99).to_bytes(4, "little") + data[4:])
    with pytest.raises(ConversionError, match="binary version 99"):
        read_model_bin(directory / "model.bin")
    with pytest.raises(ConversionError, match="no model.bin"):
        load_ctranslate2(tmp_path)
