"""The GPU model end to end against the CPU model on the same files: encoder output, logits and
cross-attention through the cached decode path, the KV-cache ancestry under beam reordering,
and whole searches through _core.generate (token-identical, scores within 1e-4 in f32).
Needs a GPU (skipped with the backend's reason elsewhere).

With gemm='exact' (the default) every GEMM, attention sum and embedding adds in the reference
kernels' order, so logits agree with the scalar reference to rounding of exp/erf/tanh and of
double-precision LayerNorm/softmax sums; the CPU core's SIMD kernels may sum in another order,
hence the 1e-4 tolerance on logits (the project's bar) rather than equality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cuda_support import cuda, needs_gpu, needs_module
from pytransformer import _core
from tiny_models import write_random_model

pytestmark = [needs_module, needs_gpu]

SOURCES = [[5, 9, 12, 7, 3, 1], [8, 3, 1], [20, 22, 17, 1]]
TARGETS = [[0, 11, 4, 9], [0, 7], [0, 3, 3, 8, 19, 25]]
LOGIT_TOLERANCE = 1e-4

VARIANTS = {
    "marian_post_norm": dict(d_model=32, heads=4, ffn_dim=48, layers=2),
    "pre_norm_embedding_norm_gelu_tanh": dict(d_model=32, ffn_dim=40, pre_norm=True,
                                              embedding_norm=True, activation="gelu_tanh"),
    "interleaved_t2t_offset_swish": dict(d_model=32, ffn_dim=40, position_layout="interleaved",
                                         position_frequencies="tensor2tensor",
                                         position_offset=1, activation="swish"),
    "no_bias_gelu_uneven_stacks": dict(d_model=32, ffn_dim=40, linear_bias=False,
                                       output_bias=True, scale_embedding=False,
                                       activation="gelu", encoder_layers=1, decoder_layers=3,
                                       encoder_heads=2, decoder_heads=8),
    "wide_heads": dict(d_model=96, heads=3, ffn_dim=130, layers=1, source_vocab_size=50,
                       target_vocab_size=70),
}


def write_model(directory: Path, name: str, quantize: str | None = None) -> str:
    path = directory / f"{name}-{quantize or 'f32'}.ptm"
    write_random_model(path, seed=11, quantize=quantize, **VARIANTS[name])
    return str(path)


@pytest.fixture(scope="module", params=list(VARIANTS))
def models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    path = write_model(tmp_path_factory.mktemp("cuda"), request.param)
    return _core.Model(path, threads=1), cuda.load_model(path)


def test_gpu_model_is_the_one_model_on_another_device(models) -> None:
    cpu, gpu = models
    assert type(gpu) is _core.Model  # one Seq2SeqModel for every device
    assert gpu.config == cpu.config and gpu.path == cpu.path
    assert cpu.device == "cpu" and gpu.device == "cuda:0"
    assert gpu.device_description.endswith("exact GEMM")


def test_encoder_output_matches_the_cpu(models) -> None:
    cpu, gpu = models
    (cpu_hidden, cpu_lengths), (gpu_hidden, gpu_lengths) = cpu.encode(SOURCES), gpu.encode(SOURCES)
    assert gpu_lengths == cpu_lengths
    np.testing.assert_allclose(gpu_hidden, cpu_hidden, rtol=0, atol=1e-5)
    for b, length in enumerate(gpu_lengths):
        assert not gpu_hidden[b, length:].any()  # padding rows are zero


def test_teacher_forced_logits_and_cross_attention_match_the_cpu(models) -> None:
    cpu, gpu = models
    for ours, theirs in zip(gpu.teacher_forced_logits(SOURCES, TARGETS),
                            cpu.teacher_forced_logits(SOURCES, TARGETS)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=LOGIT_TOLERANCE)
    for ours, theirs in zip(gpu.cross_attention(SOURCES, TARGETS),
                            cpu.cross_attention(SOURCES, TARGETS)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("options", [dict(beam_size=1), dict(beam_size=4, n_best=2),
                                     dict(beam_size=3, convention="ctranslate2"),
                                     dict(beam_size=1, max_length=40, min_length=35)],
                         ids=["greedy", "beam4_nbest2", "beam3_ctranslate2", "greedy_40_steps"])
def test_search_outputs_are_token_identical_to_the_cpu(models, options: dict) -> None:
    """max_length 40 crosses the cache's 16-step blocks."""
    cpu, gpu = models
    options.setdefault("max_length", 12)
    ours = _core.generate(gpu, SOURCES, _core.SearchOptions(gpu, **options))
    theirs = _core.generate(cpu, SOURCES, _core.SearchOptions(cpu, **options))
    for ours_sentence, theirs_sentence in zip(ours, theirs):
        assert [h[0] for h in ours_sentence] == [h[0] for h in theirs_sentence]
        assert [h[2] for h in ours_sentence] == [h[2] for h in theirs_sentence]
        np.testing.assert_allclose([h[1] for h in ours_sentence],
                                   [h[1] for h in theirs_sentence], rtol=0, atol=1e-4)


def test_cache_ancestry_under_branching_reordering_and_drops(models) -> None:
    """Beams that branch, reorder and drop out read exactly their own history on the GPU too."""
    cpu, gpu = models
    steps = [([0, 0], [0, 1], None),
             ([4, 9, 6, 7], [0, 0, 1, 1], [0, 0, 1, 1]),
             ([5, 12, 3], [1, 0, 0], [3, 1, 0]),
             ([8, 8, 10, 11, 13], [0, 0, 1, 0, 1], [2, 2, 0, 1, 0]),
             ([14, 15], [1, 0], [4, 1])]
    gpu_session = gpu.start_decoding(SOURCES[:2], max_hypotheses=5, max_steps=5)
    cpu_session = cpu.start_decoding(SOURCES[:2], max_hypotheses=5, max_steps=5)
    for tokens, sentence, parent in steps:
        ours, ours_attention = gpu_session.step(tokens, sentence, parent, return_attention=True)
        theirs, theirs_attention = cpu_session.step(tokens, sentence, parent,
                                                    return_attention=True)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=LOGIT_TOLERANCE)
        np.testing.assert_allclose(ours_attention, theirs_attention, rtol=0, atol=1e-5)
    assert gpu_session.step_count == len(steps)


def test_bad_arguments_raise_the_cpu_models_value_errors(models) -> None:
    cpu, gpu = models
    vocab = cpu.config["source_vocab_size"]
    for model in (cpu, gpu):
        with pytest.raises(ValueError, match=rf"source_ids\[0\]\[1\] = {vocab} is outside"):
            model.encode([[1, vocab]])
        with pytest.raises(ValueError, match="exceeds model.max_positions"):
            model.start_decoding(SOURCES, max_hypotheses=2, max_steps=10_000)
        session = model.start_decoding(SOURCES, max_hypotheses=2, max_steps=3)
        with pytest.raises(ValueError, match="hypotheses, expected 1..2"):
            session.step([0, 0, 0], [0, 1, 2])
        session.step([0], [0])
        with pytest.raises(ValueError, match=r"parent\[0\] = 5 is not one of"):
            session.step([0], [0], [5])
        assert session.step_count == 1  # a refused step leaves the state as it was


def assert_logits_and_beam_outputs_match(gpu, cpu) -> None:
    """Teacher-forced logits within LOGIT_TOLERANCE and beam-4 hypotheses token-identical."""
    for ours, theirs in zip(gpu.teacher_forced_logits(SOURCES, TARGETS),
                            cpu.teacher_forced_logits(SOURCES, TARGETS)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=LOGIT_TOLERANCE)
    for ours, theirs in zip(_core.generate(gpu, SOURCES, _core.SearchOptions(gpu, beam_size=4)),
                            _core.generate(cpu, SOURCES, _core.SearchOptions(cpu, beam_size=4))):
        assert [h[0] for h in ours] == [h[0] for h in theirs]


@pytest.mark.parametrize("quantize", ["f16", "bf16", "int8", "int8_all"])
def test_stored_dtypes_match_the_cpu(tmp_path: Path, quantize: str) -> None:
    """f16/bf16 weights are converted exactly; int8 weights multiply activations quantised per
    row on both devices (kernels/ref/linear_int8.h), in exact int32 sums."""
    path = write_model(tmp_path, "marian_post_norm", quantize)
    cpu, gpu = _core.Model(path, threads=1), cuda.load_model(path)
    assert_logits_and_beam_outputs_match(gpu, cpu)


@pytest.mark.skipif(cuda is None or not cuda.cublas_available, reason="built without cuBLAS")
def test_cublas_gemm_gives_the_same_translations(tmp_path: Path) -> None:
    path = write_model(tmp_path, "wide_heads")
    cpu, gpu = _core.Model(path, threads=1), cuda.load_model(path, gemm="cublas")
    assert gpu.device_description.endswith("cuBLAS GEMM")
    assert_logits_and_beam_outputs_match(gpu, cpu)


def test_models_on_other_devices_are_refused_clearly(tmp_path: Path) -> None:
    path = write_model(tmp_path, "marian_post_norm")
    with pytest.raises(RuntimeError, match=r"^CUDA requested but device \d+ does not exist"):
        cuda.load_model(path, device=cuda.device_count())
