"""The reference compute path against Hugging Face transformers on the same random weights.

Each test builds a tiny random model with transformers (MarianMTModel: post-norm, sinusoidal
`halves`/`paper` positions; M2M100ForConditionalGeneration: pre-norm with final LayerNorms,
`tensor2tensor` frequencies, positions offset past the padding id), writes its weights into our
format with the names of docs/format.md, and compares encoder outputs, teacher-forced logits
(through our cached decode path) and cross-attention on a padded batch of unequal lengths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is needed to run the reference model")
transformers = pytest.importorskip("transformers", reason="transformers is the reference")

from pytransformer import _core  # noqa: E402
from pytransformer.format import write_model  # noqa: E402
from tiny_models import tiny_metadata  # noqa: E402

TOLERANCE = 1e-4
VOCAB = 41
PAD, EOS, START = 0, 1, 0

SOURCES = [[5, 9, 12, 7, 30, 4, 1], [8, 3, 1], [40, 22, 17, 1], [6, 1]]
TARGETS = [[START, 11, 4, 9, 2], [START, 7], [START, 3, 3, 8, 19, 25, 1], [START, 39, 5]]


def padded(batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in batch)
    ids = torch.full((len(batch), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, sentence in enumerate(batch):
        ids[row, :len(sentence)] = torch.tensor(sentence)
        mask[row, :len(sentence)] = 1
    return ids, mask


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Weights large enough that every sub-layer matters (transformers initialises biases to 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "embed_positions" in name:
                continue
            noise = torch.randn(parameter.shape, generator=generator)
            if "layer_norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.2 * noise)
            elif parameter.dim() == 2:
                parameter.copy_(noise / parameter.shape[1] ** 0.5)
            else:
                parameter.copy_(0.2 * noise)
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.copy_(torch.randn(model.final_logits_bias.shape,
                                                      generator=generator))
    model.eval()


def layer_tensors(prefix: str, layer: torch.nn.Module, cross: bool) -> dict[str, np.ndarray]:
    modules = {"attn_self": layer.self_attn, "attn_self_norm": layer.self_attn_layer_norm,
               "ffn_up": layer.fc1, "ffn_down": layer.fc2, "ffn_norm": layer.final_layer_norm}
    if cross:
        modules.update(attn_cross=layer.encoder_attn, attn_cross_norm=layer.encoder_attn_layer_norm)
    tensors = {}
    for ours, module in modules.items():
        if ours.startswith("attn") and not ours.endswith("norm"):
            for part in ("q", "k", "v", "out"):
                linear = getattr(module, f"{part}_proj")
                tensors[f"{prefix}.{ours}_{part}.weight"] = linear.weight.detach().numpy()
                tensors[f"{prefix}.{ours}_{part}.bias"] = linear.bias.detach().numpy()
        elif ours.endswith("norm"):
            tensors[f"{prefix}.{ours}.gamma"] = module.weight.detach().numpy()
            tensors[f"{prefix}.{ours}.beta"] = module.bias.detach().numpy()
        else:
            tensors[f"{prefix}.{ours}.weight"] = module.weight.detach().numpy()
            tensors[f"{prefix}.{ours}.bias"] = module.bias.detach().numpy()
    return tensors


def export(model: torch.nn.Module, metadata: dict, path: Path) -> None:
    """Writes the transformers model's weights under our names (docs/format.md)."""
    inner = model.model
    tensors = {"enc.embed.weight": inner.encoder.embed_tokens.weight.detach().numpy(),
               "dec.embed.weight": inner.decoder.embed_tokens.weight.detach().numpy(),
               "dec.out_proj.weight": model.lm_head.weight.detach().numpy()}
    for i, layer in enumerate(inner.encoder.layers):
        tensors.update(layer_tensors(f"enc.{i}", layer, cross=False))
    for i, layer in enumerate(inner.decoder.layers):
        tensors.update(layer_tensors(f"dec.{i}", layer, cross=True))
    if metadata["model.pre_norm"]:
        for stack, module in (("enc", inner.encoder), ("dec", inner.decoder)):
            tensors[f"{stack}.final_norm.gamma"] = module.layer_norm.weight.detach().numpy()
            tensors[f"{stack}.final_norm.beta"] = module.layer_norm.bias.detach().numpy()
    if metadata["model.output_bias"]:
        tensors["dec.out_proj.bias"] = model.final_logits_bias[0].detach().numpy()
    write_model(path, metadata, {name: np.ascontiguousarray(value, dtype=np.float32)
                                 for name, value in tensors.items()})


def compare(model: torch.nn.Module, path: Path, start: int = START) -> dict[str, float]:
    """Max abs differences of encoder output, logits and cross-attention (valid positions)."""
    ours = _core.Model(str(path), threads=1)
    targets = [[start] + sentence[1:] for sentence in TARGETS]
    source, source_mask = padded(SOURCES)
    target, target_mask = padded(targets)
    with torch.no_grad():
        reference = model(input_ids=source, attention_mask=source_mask, decoder_input_ids=target,
                          decoder_attention_mask=target_mask, output_attentions=True)
    hidden, lengths = ours.encode(SOURCES)
    assert lengths == [len(s) for s in SOURCES]
    assert hidden.shape == (len(SOURCES), source.shape[1], metadata_d_model(ours))
    logits = ours.teacher_forced_logits(SOURCES, targets)
    attention = ours.cross_attention(SOURCES, targets)
    diffs = {"encoder": 0.0, "logits": 0.0, "attention": 0.0}
    expected_hidden = reference.encoder_last_hidden_state.detach().numpy()
    expected_logits = reference.logits.detach().numpy()
    expected_attention = np.stack([a.detach().numpy() for a in reference.cross_attentions], axis=1)
    for b, (src, tgt) in enumerate(zip(SOURCES, targets)):
        s, t = len(src), len(tgt)
        assert not hidden[b, s:].any(), "padding rows of the encoder output must be zero"
        diffs["encoder"] = max(diffs["encoder"],
                               float(np.abs(hidden[b, :s] - expected_hidden[b, :s]).max()))
        assert logits[b].shape == (t, VOCAB)
        diffs["logits"] = max(diffs["logits"],
                              float(np.abs(logits[b] - expected_logits[b, :t]).max()))
        assert attention[b].shape == expected_attention[b, :, :, :t, :s].shape
        diffs["attention"] = max(diffs["attention"], float(
            np.abs(attention[b] - expected_attention[b, :, :, :t, :s]).max()))
    return diffs


def metadata_d_model(model: _core.Model) -> int:
    return model.config["d_model"]


MARIAN_VARIANTS = [
    dict(activation="swish", d_model=32, layers=2, heads=4, ffn_dim=64),
    dict(activation="relu", d_model=48, encoder_layers=1, decoder_layers=3, heads=2, ffn_dim=40),
    dict(activation="gelu", d_model=64, encoder_layers=3, decoder_layers=1, heads=8, ffn_dim=96),
    dict(activation="gelu_new", d_model=32, layers=2, heads=1, ffn_dim=32),
]
OUR_ACTIVATION = {"swish": "swish", "relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh"}


@pytest.mark.parametrize("variant", MARIAN_VARIANTS, ids=lambda v: v["activation"])
def test_marian_post_norm_matches_transformers(tmp_path: Path, variant: dict) -> None:
    layers = variant.get("layers")
    encoder_layers = variant.get("encoder_layers", layers)
    decoder_layers = variant.get("decoder_layers", layers)
    config = transformers.MarianConfig(
        vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=variant["d_model"],
        encoder_layers=encoder_layers, decoder_layers=decoder_layers,
        encoder_attention_heads=variant["heads"], decoder_attention_heads=variant["heads"],
        encoder_ffn_dim=variant["ffn_dim"], decoder_ffn_dim=variant["ffn_dim"],
        activation_function=variant["activation"], max_position_embeddings=64,
        scale_embedding=True, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=START)
    model = transformers.MarianMTModel(config)
    model.set_attn_implementation("eager")
    randomize(model, seed=len(variant["activation"]))
    metadata = tiny_metadata(
        d_model=variant["d_model"], encoder_layers=encoder_layers, decoder_layers=decoder_layers,
        heads=variant["heads"], ffn_dim=variant["ffn_dim"],
        activation=OUR_ACTIVATION[variant["activation"]], pre_norm=False, scale_embedding=True,
        position_layout="halves", position_frequencies="paper", position_offset=0,
        max_positions=64, source_vocab_size=VOCAB, target_vocab_size=VOCAB, output_bias=True)
    export(model, metadata, tmp_path / "marian.ptm")
    diffs = compare(model, tmp_path / "marian.ptm")
    print("marian", variant["activation"], diffs)
    assert diffs["encoder"] < TOLERANCE
    assert diffs["logits"] < TOLERANCE
    assert diffs["attention"] < 1e-5


@pytest.mark.parametrize("heads,layers", [(4, 2), (2, 3)])
def test_m2m100_pre_norm_matches_transformers(tmp_path: Path, heads: int, layers: int) -> None:
    d_model = 32
    # M2M100 derives positions from the ids (padding ids get none), so its decoder must not
    # start with the padding id: it starts with EOS, as the real M2M100 models do.
    config = transformers.M2M100Config(
        vocab_size=VOCAB, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=48,
        decoder_ffn_dim=48, activation_function="relu", max_position_embeddings=64,
        scale_embedding=True, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=EOS,
        bos_token_id=2)
    model = transformers.M2M100ForConditionalGeneration(config)
    model.set_attn_implementation("eager")
    randomize(model, seed=heads * 10 + layers)
    # M2M100 numbers the first token's position padding_idx + 1.
    metadata = tiny_metadata(
        d_model=d_model, layers=layers, heads=heads, ffn_dim=48, activation="relu",
        pre_norm=True, scale_embedding=True, position_layout="halves",
        position_frequencies="tensor2tensor", position_offset=PAD + 1, max_positions=60,
        source_vocab_size=VOCAB, target_vocab_size=VOCAB, output_bias=False, decoder_start_id=EOS)
    export(model, metadata, tmp_path / "m2m100.ptm")
    diffs = compare(model, tmp_path / "m2m100.ptm", start=EOS)
    print("m2m100", heads, layers, diffs)
    assert diffs["encoder"] < TOLERANCE
    assert diffs["logits"] < TOLERANCE
    assert diffs["attention"] < 1e-5
