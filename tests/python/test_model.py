"""The model core without torch: the KV cache and its ancestry table, batching and padding,
threads, quantized weights, architecture variants no transformers model has, and argument
checking. (Agreement with the real references is in test_model_transformers.py.)"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.format import read_model, write_model
from tiny_models import write_random_model

SOURCES = [[5, 9, 12, 7, 3, 1], [8, 3, 1], [20, 22, 17, 1]]
TARGETS = [[0, 11, 4, 9], [0, 7], [0, 3, 3, 8, 19, 25]]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.ptm"
    write_random_model(path, seed=3, d_model=32, heads=4, ffn_dim=48, layers=2)
    return path


# --- KV cache ------------------------------------------------------------------------------


def test_cache_ancestry_matches_decoding_each_hypothesis_alone(model_path: Path) -> None:
    """Beams that branch, reorder and drop out read exactly their own history."""
    model = _core.Model(str(model_path), threads=1)
    session = model.start_decoding(SOURCES[:2], max_hypotheses=5, max_steps=5)
    # (tokens, sentence, parent) per step: branching, a permutation, a drop, duplicated parents.
    steps = [([0, 0], [0, 1], None),
             ([4, 9, 6, 7], [0, 0, 1, 1], [0, 0, 1, 1]),
             ([5, 12, 3], [1, 0, 0], [3, 1, 0]),
             ([8, 8, 10, 11, 13], [0, 0, 1, 0, 1], [2, 2, 0, 1, 0]),
             ([14, 15], [1, 0], [4, 1])]
    histories: list[list[int]] = []
    step_logits = []
    for t, (tokens, sentence, parent) in enumerate(steps):
        step_logits.append(session.step(tokens, sentence, parent))
        if t == 0:
            histories = [[token] for token in tokens]
        else:
            histories = [histories[p] + [token] for p, token in zip(parent, tokens)]
        for h, history in enumerate(histories):
            alone = model.teacher_forced_logits([SOURCES[sentence[h]]], [history])[0]
            np.testing.assert_array_equal(step_logits[t][h], alone[t])
    assert session.step_count == len(steps)


def test_batch_with_padding_matches_each_sentence_alone(model_path: Path) -> None:
    model = _core.Model(str(model_path), threads=1)
    hidden, lengths = model.encode(SOURCES)
    batched = model.teacher_forced_logits(SOURCES, TARGETS)
    for b, (source, target) in enumerate(zip(SOURCES, TARGETS)):
        alone_hidden, _ = model.encode([source])
        np.testing.assert_allclose(hidden[b, :lengths[b]], alone_hidden[0], atol=1e-6)
        assert not hidden[b, lengths[b]:].any()
        alone = model.teacher_forced_logits([source], [target])[0]
        np.testing.assert_allclose(batched[b], alone, atol=1e-6)


def test_threads_give_identical_results(model_path: Path) -> None:
    one = _core.Model(str(model_path), threads=1).teacher_forced_logits(SOURCES, TARGETS)
    three = _core.Model(str(model_path), threads=3).teacher_forced_logits(SOURCES, TARGETS)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)


def test_cross_attention_is_a_distribution_over_the_source(model_path: Path) -> None:
    model = _core.Model(str(model_path))
    attention = model.cross_attention(SOURCES, TARGETS)
    config = model.config
    for probabilities, source, target in zip(attention, SOURCES, TARGETS):
        assert probabilities.shape == (config["decoder_layers"], config["decoder_heads"],
                                       len(target), len(source))
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    session = model.start_decoding(SOURCES, max_hypotheses=3, max_steps=1)
    _, step_attention = session.step([0, 0, 0], [0, 1, 2], return_attention=True)
    assert step_attention.shape == (config["decoder_layers"], config["decoder_heads"], 3,
                                    max(map(len, SOURCES)))
    assert not step_attention[:, :, 1, len(SOURCES[1]):].any()  # padding keys get nothing


# --- quantized weights ---------------------------------------------------------------------


@pytest.mark.parametrize("quantize,loose", [("f16", 5e-3), ("bf16", 5e-2), ("int8", 5e-2),
                                            ("int8_all", 5e-2)])
def test_quantized_weights_match_their_dequantized_values(tmp_path: Path, quantize: str,
                                                          loose: float) -> None:
    """Converted on the fly, each dtype gives the f32 model of its dequantized weights."""
    quantized = tmp_path / f"{quantize}.ptm"
    write_random_model(quantized, seed=5, quantize=quantize, d_model=32, heads=4, ffn_dim=48)
    metadata, tensors = read_model(quantized)
    dequantized = tmp_path / "dequantized.ptm"
    write_model(dequantized, metadata, tensors)
    original = tmp_path / "f32.ptm"
    write_random_model(original, seed=5, d_model=32, heads=4, ffn_dim=48)
    logits = _core.Model(str(quantized)).teacher_forced_logits(SOURCES, TARGETS)
    reference = _core.Model(str(dequantized)).teacher_forced_logits(SOURCES, TARGETS)
    unquantized = _core.Model(str(original)).teacher_forced_logits(SOURCES, TARGETS)
    for ours, exact, full in zip(logits, reference, unquantized):
        if quantize in ("int8", "int8_all"):
            # int8 weights multiply activations quantised per row to int8 (exactly as
            # kernels/ref/linear_int8.h states): close to the dequantized model, not equal.
            assert np.abs(ours - exact).max() < 2e-2 * np.abs(exact).max()
        else:
            np.testing.assert_allclose(ours, exact, atol=1e-5)
        scale = np.abs(full).max()
        assert np.abs(ours - full).max() < loose * scale


# --- architecture variants, against a plain NumPy transcription of docs/format.md ----------


def positions(count: int, dim: int, layout: str, frequencies: str, offset: int) -> np.ndarray:
    half = dim // 2
    i = np.arange(half)
    if frequencies == "paper":
        frequency = 1.0 / np.power(10000.0, 2.0 * i / dim)
    else:
        frequency = np.exp(-i * math.log(10000.0) / (half - 1))
    angle = (offset + np.arange(count))[:, None] * frequency[None, :]
    table = np.empty((count, dim))
    if layout == "halves":
        table[:, :half], table[:, half:] = np.sin(angle), np.cos(angle)
    else:
        table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
    return table


def layer_norm(x: np.ndarray, w: dict, name: str, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w[name + ".gamma"] + w[name + ".beta"]


def linear(x: np.ndarray, w: dict, name: str) -> np.ndarray:
    y = x @ w[name + ".weight"].T
    return y + w[name + ".bias"] if name + ".bias" in w else y


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
}


def attention(x: np.ndarray, memory: np.ndarray, w: dict, name: str, heads: int,
              causal: bool) -> np.ndarray:
    q, k, v = (linear(src, w, f"{name}_{p}") for p, src in (("q", x), ("k", memory), ("v", memory)))
    d = q.shape[-1] // heads
    out = np.empty_like(q)
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        scores = q[:, cols] @ k[:, cols].T / math.sqrt(d)
        if causal:
            scores = scores + np.triu(np.full(scores.shape, -np.inf), 1)
        p = np.exp(scores - scores.max(-1, keepdims=True))
        out[:, cols] = (p / p.sum(-1, keepdims=True)) @ v[:, cols]
    return linear(out, w, f"{name}_out")


def numpy_logits(metadata: dict, w: dict, source: list[int], target: list[int]) -> np.ndarray:
    """Full-sequence (uncached) forward pass of one sentence in float64."""
    m = {key.split(".", 1)[1]: value for key, value in metadata.items() if key.startswith("model.")}
    w = {name: value.astype(np.float64) for name, value in w.items()}
    eps, pre, act = m["layer_norm_epsilon"], m["pre_norm"], ACTIVATIONS[m["activation"]]
    scale = math.sqrt(m["d_model"]) if m["scale_embedding"] else 1.0

    def embed(stack: str, ids: list[int]) -> np.ndarray:
        x = w[f"{stack}.embed.weight"][ids] * scale + positions(
            len(ids), m["d_model"], m["position_layout"], m["position_frequencies"],
            m["position_offset"])
        return layer_norm(x, w, f"{stack}.embed_norm", eps) if m["embedding_norm"] else x

    def block(x: np.ndarray, norm: str, sublayer) -> np.ndarray:
        if pre:
            return x + sublayer(layer_norm(x, w, norm, eps))
        return layer_norm(x + sublayer(x), w, norm, eps)

    def ffn(scope: str):
        return lambda x: linear(act(linear(x, w, f"{scope}.ffn_up")), w, f"{scope}.ffn_down")

    x = embed("enc", source)
    for i in range(m["encoder_layers"]):
        s = f"enc.{i}"
        x = block(x, f"{s}.attn_self_norm",
                  lambda h: attention(h, h, w, f"{s}.attn_self", m["encoder_heads"], False))
        x = block(x, f"{s}.ffn_norm", ffn(s))
    memory = layer_norm(x, w, "enc.final_norm", eps) if pre else x
    y = embed("dec", target)
    for i in range(m["decoder_layers"]):
        s = f"dec.{i}"
        y = block(y, f"{s}.attn_self_norm",
                  lambda h: attention(h, h, w, f"{s}.attn_self", m["decoder_heads"], True))
        y = block(y, f"{s}.attn_cross_norm",
                  lambda h: attention(h, memory, w, f"{s}.attn_cross", m["decoder_heads"], False))
        y = block(y, f"{s}.ffn_norm", ffn(s))
    if pre:
        y = layer_norm(y, w, "dec.final_norm", eps)
    return linear(y, w, "dec.out_proj")


VARIANTS = [
    dict(pre_norm=True, embedding_norm=True, activation="gelu_tanh"),
    dict(position_layout="interleaved", position_frequencies="tensor2tensor", position_offset=1,
         activation="swish"),
    dict(linear_bias=False, output_bias=True, scale_embedding=False, activation="gelu",
         encoder_layers=1, decoder_layers=3, encoder_heads=2, decoder_heads=8),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=["pre_norm_embedding_norm",
                                                   "interleaved_t2t_offset", "no_bias"])
def test_architecture_variants_match_a_numpy_transcription(tmp_path: Path, variant: dict) -> None:
    path = tmp_path / "variant.ptm"
    write_random_model(path, seed=7, d_model=32, ffn_dim=40, **variant)
    metadata, tensors = read_model(path)
    logits = _core.Model(str(path)).teacher_forced_logits(SOURCES, TARGETS)
    for ours, source, target in zip(logits, SOURCES, TARGETS):
        np.testing.assert_allclose(ours, numpy_logits(metadata, tensors, source, target),
                                   atol=1e-4)


# --- arguments -----------------------------------------------------------------------------


def test_bad_arguments_raise_value_error(model_path: Path) -> None:
    model = _core.Model(str(model_path))
    vocab = model.config["source_vocab_size"]
    limit = model.config["max_positions"]
    bad_calls = [
        (lambda: model.encode([[3, vocab]]), "outside the source vocabulary"),
        (lambda: model.encode([[3], []]), "is empty"),
        (lambda: model.encode([[-1]]), r"source_ids\[0\]\[0\] = -1 is not a valid token id"),
        (lambda: model.encode([[3, 2**31]]), r"source_ids\[0\]\[1\] = 2147483648 is not a valid"),
        (lambda: model.encode([[3] * (limit + 1)]), "max_positions"),
        (lambda: model.teacher_forced_logits([[3]], [[0], [0]]), "sentences"),
        (lambda: model.teacher_forced_logits([[3]], [[]]), "is empty"),
        (lambda: model.cross_attention([[3]], [[0], [0]]), "sentences"),
        (lambda: model.cross_attention([[3], [4]], [[0]]), "sentences"),
        (lambda: model.teacher_forced_logits([[3]], [[0, 10**6]]), "target vocabulary"),
        (lambda: model.teacher_forced_logits([[3]], [[0] * (limit + 1)]), "max_positions"),
        (lambda: model.start_decoding([[3]], 0, 4), "max_hypotheses"),
        (lambda: model.start_decoding([[3]], 2, 0), "max_steps"),
        (lambda: model.start_decoding([], 2, 2), "empty"),
        (lambda: _core.Model(str(model_path), threads=-1), "threads"),
    ]
    for call, message in bad_calls:
        with pytest.raises(ValueError, match=message):
            call()

    session = model.start_decoding([[3, 1], [4, 1]], max_hypotheses=2, max_steps=2)
    with pytest.raises(ValueError, match="hypotheses"):
        session.step([0, 0, 0], [0, 1, 1])
    with pytest.raises(ValueError, match="encoded batch"):
        session.step([0], [2])
    with pytest.raises(ValueError, match="same length"):
        session.step([0, 0], [0])
    assert session.step_count == 0  # rejected steps leave the state untouched
    session.step([0, 0], [0, 1])
    with pytest.raises(ValueError, match="parent is required"):
        session.step([5], [0])
    with pytest.raises(ValueError, match="previous step"):
        session.step([5], [0], [2])
    session.step([5], [0], [1])
    with pytest.raises(ValueError, match="max_steps"):
        session.step([5], [0], [0])


def test_missing_or_corrupt_file_raises_model_format_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        _core.Model(str(tmp_path / "missing.ptm"))
    broken = tmp_path / "broken.ptm"
    broken.write_bytes(b"PYTRFMR\0" + b"\0" * 100)
    with pytest.raises(_core.ModelFormatError):
        _core.Model(str(broken))
