"""The SSRU decoder (model.decoder_autoregression = ssru, docs/format.md) against a reference.

Marian's SSRU (src/rnn/cells.h, class SSRU, in the decoder layers of Bergamot models) replaces a
decoder layer's self-attention with a recurrence over the target positions:
    u = x W,  f = sigmoid(x Wf + bf),  c_t = f * c_{t-1} + (1 - f) * u (c_{-1} = 0),
    out = relu(c_t)
followed by the sub-layer's residual and LayerNorm. Marian is not installed here, so the
reference is transformers' MarianMTModel (post-norm) and M2M100 (pre-norm) with each decoder
layer's self-attention module replaced by that recurrence in torch, written from Marian's
definition; everything else in the reference is transformers' own code. The same random
weights are written in our format, and the test compares teacher-forced logits (a padded batch
of unequal lengths), greedy decoding and beam search (where hypotheses change parents, so the
cells must follow them) with transformers' generate().
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is needed to run the reference model")
transformers = pytest.importorskip("transformers", reason="transformers is the reference")

from pytransformer import _core  # noqa: E402
from pytransformer.format import write_model  # noqa: E402
from test_model_transformers import (PAD, START, VOCAB, compare, layer_tensors,  # noqa: E402
                                     randomize)
from tiny_models import tiny_metadata  # noqa: E402

TOLERANCE = 1e-4
EOS = 1


class MarianSsru(torch.nn.Module):
    """Marian's SSRU cell over a whole target sequence, in place of a decoder layer's
    self-attention (returns what transformers' attention modules return)."""

    def __init__(self, d_model: int, generator: torch.Generator) -> None:
        super().__init__()
        scale = d_model ** -0.5
        self.W = torch.nn.Parameter(torch.randn(d_model, d_model, generator=generator) * scale)
        self.Wf = torch.nn.Parameter(torch.randn(d_model, d_model, generator=generator) * scale)
        self.bf = torch.nn.Parameter(torch.randn(d_model, generator=generator) * 0.5)

    def forward(self, hidden_states, *args, **kwargs):
        candidate = hidden_states @ self.W
        forget = torch.sigmoid(hidden_states @ self.Wf + self.bf)
        cell = torch.zeros_like(hidden_states[:, 0])
        outputs = []
        for t in range(hidden_states.shape[1]):
            cell = forget[:, t] * cell + (1 - forget[:, t]) * candidate[:, t]
            outputs.append(torch.relu(cell))
        return torch.stack(outputs, dim=1), None


def with_ssru(model, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for layer in model.model.decoder.layers:
        layer.self_attn = MarianSsru(model.config.d_model, generator)
    model.eval()


def export_ssru(model, metadata: dict, path: Path) -> None:
    """Our names for the weights, the decoder's SSRU as one [2d, d] product (candidate rows,
    then forget-gate rows, in our [out, in] layout) with its bias (zeros for the candidate)."""
    inner = model.model
    d = model.config.d_model
    tensors = {"enc.embed.weight": inner.encoder.embed_tokens.weight.detach().numpy(),
               "dec.embed.weight": inner.decoder.embed_tokens.weight.detach().numpy(),
               "dec.out_proj.weight": model.lm_head.weight.detach().numpy()}
    for i, layer in enumerate(inner.encoder.layers):
        tensors.update(layer_tensors(f"enc.{i}", layer, cross=False))
    for i, layer in enumerate(inner.decoder.layers):
        ssru = layer.self_attn
        parts = _decoder_tensors(f"dec.{i}", layer)
        parts[f"dec.{i}.ssru.weight"] = torch.cat([ssru.W.T, ssru.Wf.T]).detach().numpy()
        parts[f"dec.{i}.ssru.bias"] = torch.cat([torch.zeros(d), ssru.bf]).detach().numpy()
        parts[f"dec.{i}.ssru_norm.gamma"] = layer.self_attn_layer_norm.weight.detach().numpy()
        parts[f"dec.{i}.ssru_norm.beta"] = layer.self_attn_layer_norm.bias.detach().numpy()
        tensors.update(parts)
    if metadata["model.pre_norm"]:
        for stack, module in (("enc", inner.encoder), ("dec", inner.decoder)):
            tensors[f"{stack}.final_norm.gamma"] = module.layer_norm.weight.detach().numpy()
            tensors[f"{stack}.final_norm.beta"] = module.layer_norm.bias.detach().numpy()
    if metadata["model.output_bias"]:
        tensors["dec.out_proj.bias"] = model.final_logits_bias[0].detach().numpy()
    write_model(path, metadata, {name: np.ascontiguousarray(value, dtype=np.float32)
                                 for name, value in tensors.items()})


def _decoder_tensors(prefix: str, layer) -> dict[str, np.ndarray]:
    """The cross-attention and feed-forward tensors of a decoder layer (not self-attention)."""
    tensors = {}
    for part in ("q", "k", "v", "out"):
        linear = getattr(layer.encoder_attn, f"{part}_proj")
        tensors[f"{prefix}.attn_cross_{part}.weight"] = linear.weight.detach().numpy()
        tensors[f"{prefix}.attn_cross_{part}.bias"] = linear.bias.detach().numpy()
    for ours, module in (("attn_cross_norm", layer.encoder_attn_layer_norm),
                         ("ffn_norm", layer.final_layer_norm)):
        tensors[f"{prefix}.{ours}.gamma"] = module.weight.detach().numpy()
        tensors[f"{prefix}.{ours}.beta"] = module.bias.detach().numpy()
    for ours, module in (("ffn_up", layer.fc1), ("ffn_down", layer.fc2)):
        tensors[f"{prefix}.{ours}.weight"] = module.weight.detach().numpy()
        tensors[f"{prefix}.{ours}.bias"] = module.bias.detach().numpy()
    return tensors


def marian_model(d_model: int, layers: int, heads: int, seed: int):
    config = transformers.MarianConfig(
        vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=d_model, encoder_layers=layers,
        decoder_layers=layers, encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model, activation_function="relu",
        max_position_embeddings=64, scale_embedding=True, pad_token_id=PAD, eos_token_id=EOS,
        decoder_start_token_id=START)
    model = transformers.MarianMTModel(config)
    model.set_attn_implementation("eager")
    randomize(model, seed=seed)
    with_ssru(model, seed)
    metadata = tiny_metadata(
        d_model=d_model, layers=layers, heads=heads, ffn_dim=2 * d_model, activation="relu",
        pre_norm=False, scale_embedding=True, position_layout="halves",
        position_frequencies="paper", position_offset=0, max_positions=64,
        source_vocab_size=VOCAB, target_vocab_size=VOCAB, output_bias=True,
        extra={"model.decoder_autoregression": "ssru"})
    return model, metadata


def m2m100_model(d_model: int, layers: int, heads: int, seed: int):
    config = transformers.M2M100Config(
        vocab_size=VOCAB, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=48,
        decoder_ffn_dim=48, activation_function="relu", max_position_embeddings=64,
        scale_embedding=True, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=EOS,
        bos_token_id=2)
    model = transformers.M2M100ForConditionalGeneration(config)
    model.set_attn_implementation("eager")
    randomize(model, seed=seed)
    with_ssru(model, seed)
    metadata = tiny_metadata(
        d_model=d_model, layers=layers, heads=heads, ffn_dim=48, activation="relu",
        pre_norm=True, scale_embedding=True, position_layout="halves",
        position_frequencies="tensor2tensor", position_offset=PAD + 1, max_positions=60,
        source_vocab_size=VOCAB, target_vocab_size=VOCAB, output_bias=False,
        decoder_start_id=EOS, extra={"model.decoder_autoregression": "ssru"})
    return model, metadata


@pytest.mark.parametrize("d_model,layers,heads", [(32, 2, 4), (48, 3, 2)])
def test_post_norm_ssru_logits_match_the_reference(tmp_path, d_model, layers, heads):
    model, metadata = marian_model(d_model, layers, heads, seed=d_model + layers)
    export_ssru(model, metadata, tmp_path / "ssru.ptm")
    diffs = compare(model, tmp_path / "ssru.ptm")
    print("marian ssru", d_model, layers, diffs)
    assert diffs["encoder"] < TOLERANCE and diffs["logits"] < TOLERANCE


def test_pre_norm_ssru_logits_match_the_reference(tmp_path):
    model, metadata = m2m100_model(32, 2, 4, seed=7)
    export_ssru(model, metadata, tmp_path / "ssru.ptm")
    diffs = compare(model, tmp_path / "ssru.ptm", start=EOS)
    print("m2m100 ssru", diffs)
    assert diffs["encoder"] < TOLERANCE and diffs["logits"] < TOLERANCE


def sources(seed: int, count: int = 8) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(2, VOCAB, size=int(rng.integers(1, 10)))] + [EOS]
            for _ in range(count)]


@pytest.mark.parametrize("beam_size", [1, 4])
def test_ssru_decoding_matches_transformers_generate(tmp_path, beam_size):
    """Greedy and beam search: the cells follow each hypothesis's parent."""
    model, metadata = marian_model(32, 2, 4, seed=3)
    export_ssru(model, metadata, tmp_path / "ssru.ptm")
    ours = _core.Model(str(tmp_path / "ssru.ptm"), threads=1)
    batch = sources(seed=beam_size)
    max_length = 12
    longest = max(len(s) for s in batch)
    input_ids = torch.tensor([s + [PAD] * (longest - len(s)) for s in batch])
    mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in batch])
    # No cache: the reference recurrence runs over the whole prefix at every step.
    config = transformers.GenerationConfig(
        num_beams=beam_size, max_new_tokens=max_length, bad_words_ids=[[PAD]],
        eos_token_id=EOS, pad_token_id=PAD, decoder_start_token_id=START, early_stopping=False,
        do_sample=False, use_cache=False, length_penalty=1.0)
    # generate() merges unset options from the model's config: leave nothing to merge.
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=EOS, pad_token_id=PAD, decoder_start_token_id=START)
    with torch.no_grad():
        expected = model.generate(input_ids=input_ids, attention_mask=mask,
                                  generation_config=config).tolist()
    options = _core.SearchOptions(ours, beam_size=beam_size, max_length=max_length,
                                  suppressed_ids=[PAD], forced_eos=False,
                                  convention="transformers")
    got = _core.generate(ours, batch, options)
    for sentence, hypotheses, want in zip(batch, got, expected):
        tokens = hypotheses[0][0]
        want = want[1:]
        if EOS in want:
            want = want[:want.index(EOS)]
        while want and want[-1] == PAD:
            want.pop()
        assert tokens == want, (sentence, len(tokens), len(want), tokens, want)


def test_an_ssru_model_without_its_tensors_is_refused(tmp_path):
    model, metadata = marian_model(32, 1, 4, seed=1)
    export_ssru(model, metadata, tmp_path / "ssru.ptm")
    from pytransformer.format import read_model
    stored_metadata, tensors = read_model(tmp_path / "ssru.ptm")
    del tensors["dec.0.ssru.bias"]
    with pytest.raises(ValueError, match="dec.0.ssru.bias"):
        write_model(tmp_path / "broken.ptm", stored_metadata, tensors)
    stored_metadata["model.decoder_autoregression"] = "lstm"
    with pytest.raises(ValueError, match="decoder_autoregression"):
        write_model(tmp_path / "broken.ptm", stored_metadata, read_model(tmp_path / "ssru.ptm")[1])
