"""The `llama` architecture of the model format (docs/format.md, "Decoder-only language
models"): the keys the reader requires and checks, and the tensors it expects, through the
writer, which asks the C++ reader (no torch needed)."""

from __future__ import annotations

from typing import Any

import pytest

from pytransformer import _core
from pytransformer.format import expected_tensors

VOCAB = [f"<p{i}>" for i in range(50)]


def llama_metadata(**changes: Any) -> dict[str, Any]:
    """A valid llama config: d 32, 4 query heads of 8, 2 K/V heads, 2 layers; `changes` set keys
    (a value of None deletes one)."""
    metadata: dict[str, Any] = {
        "general.architecture": "llama",
        "model.d_model": 32, "model.decoder_layers": 2, "model.decoder_heads": 4,
        "model.kv_heads": 2, "model.decoder_ffn_dim": 48, "model.activation": "swish",
        "model.layer_norm_epsilon": 1e-5, "model.max_positions": 64,
        "model.target_vocab_size": len(VOCAB), "model.rope_base": 10000.0,
        "model.rotary_dim": 8, "model.rotary_layout": "half_split", "model.qkv_bias": False,
        "tokens.bos_id": 1, "tokens.eos_id": 2, "vocab.target": VOCAB,
        "tokenizer.type": "huggingface", "tokenizer.target_model": b"{}",
        "tokenizer.add_bos": True, "generation.beam_size": 1, "generation.max_length": 32,
        "generation.length_penalty": 1.0, "generation.suppressed_ids": [],
        "generation.forced_eos": False, "generation.search_convention": "transformers",
    }
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            metadata.pop(key)
        else:
            metadata[key] = value
    return metadata


def test_expected_tensors_follow_the_grouped_query_shapes():
    tensors = {name: shape for name, shape, _quantizable in expected_tensors(llama_metadata())}
    assert tensors["dec.embed.weight"] == (50, 32)
    assert tensors["dec.0.attn_self_q.weight"] == (32, 32)
    assert tensors["dec.0.attn_self_k.weight"] == (16, 32)  # 2 K/V heads of 8
    assert tensors["dec.1.attn_self_v.weight"] == (16, 32)
    assert tensors["dec.1.attn_self_out.weight"] == (32, 32)
    assert tensors["dec.0.ffn_gate_up.weight"] == (96, 32)
    assert tensors["dec.0.ffn_down.weight"] == (32, 48)
    assert tensors["dec.0.attn_self_norm.gamma"] == (32,)
    assert tensors["dec.final_norm.gamma"] == (32,)
    assert tensors["dec.out_proj.weight"] == (50, 32)
    assert not any(name.startswith("enc.") or name.endswith(".beta") or "bias" in name
                   for name in tensors)
    assert len(tensors) == 1 + 2 * 8 + 2


def test_qkv_bias_adds_the_three_biases():
    tensors = dict((name, shape) for name, shape, _ in expected_tensors(
        llama_metadata(model__qkv_bias=True)))
    assert tensors["dec.0.attn_self_q.bias"] == (32,)
    assert tensors["dec.0.attn_self_k.bias"] == (16,)
    assert tensors["dec.0.attn_self_v.bias"] == (16,)
    assert "dec.0.attn_self_out.bias" not in tensors


@pytest.mark.parametrize("changes, message", [
    ({"model__kv_heads": 3}, "model.kv_heads: 3 does not divide model.decoder_heads 4"),
    ({"model__kv_heads": None}, "model.kv_heads: missing required key"),
    ({"model__rotary_dim": 7}, "model.rotary_dim: must be even"),
    ({"model__rotary_dim": 10}, "model.rotary_dim: 10 is outside 2..8"),
    ({"model__rotary_layout": "neox"}, "model.rotary_layout: unknown value 'neox'"),
    ({"model__rope_base": 1.0}, "model.rope_base: must be greater than 1"),
    ({"model__activation": "relu"}, "model.activation: must be swish"),
    ({"tokens__bos_id": 50}, "tokens.bos_id: 50 is outside the target vocabulary"),
    ({"tokens__stop_ids": [2, 99]}, "tokens.stop_ids: 99 is outside"),
    ({"tokenizer__target_model": None}, "tokenizer.target_model: required for a llama model"),
    ({"tokenizer__type": "none"}, "tokenizer.type: unknown value 'none'"),
    ({"tokenizer__add_bos": None}, "tokenizer.add_bos: missing required key"),
    ({"general__architecture": "mamba"}, "unsupported architecture 'mamba'"),
])
def test_the_reader_refuses_inconsistent_llama_metadata(changes, message):
    with pytest.raises(_core.ModelFormatError, match=message):
        expected_tensors(llama_metadata(**changes))


def test_translation_keys_are_not_required_of_a_language_model():
    # None of the encoder, source-vocabulary or sinusoidal-position keys is present.
    metadata = llama_metadata()
    assert not any(key.startswith(("model.encoder", "vocab.source", "model.position"))
                   for key in metadata)
    assert expected_tensors(metadata)
