"""The Hugging Face Llama / Qwen2 converter (pytransformer.convert.llama_hf) on small
random-weight transformers models (tests/python/llama_models.py): every tensor equals the
transformers state dict after the mapping, the metadata says what config.json and the tokenizer
say, and what the format cannot express is refused with the reason."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="the test models are built with torch (pip install torch)")
pytest.importorskip("transformers",
                    reason="the test models are built with transformers (pip install transformers)")
pytest.importorskip("tokenizers", reason="the converter reads tokenizer.json with the tokenizers "
                    "package (pip install tokenizers)")

import torch  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

import llama_models  # noqa: E402
from llama_models import VARIANTS, build_llama, edit_config  # noqa: E402
from pytransformer.convert import (ConversionError, convert_llama_hf,  # noqa: E402
                                   detect_model_format)
from pytransformer.convert.llama_hf import load_llama_hf  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    """Every VARIANTS model, built once: name -> (directory, transformers model)."""
    root = tmp_path_factory.mktemp("llama_hf")
    return {name: (root / name, build_llama(root / name, seed=index, **options))
            for index, (name, options) in enumerate(VARIANTS.items())}


def copy_of(built: dict[str, tuple[Path, Any]], name: str, tmp_path: Path) -> Path:
    destination = tmp_path / name
    shutil.copytree(built[name][0], destination)
    return destination


def expected_tensors(model: Any) -> dict[str, np.ndarray]:
    """Our tensors, computed from the transformers model's own parameters."""
    config = model.config
    state = {name: value.detach().to(torch.float32).numpy()
             for name, value in model.state_dict().items()}
    tensors = {
        "dec.embed.weight": state["model.embed_tokens.weight"],
        "dec.final_norm.gamma": state["model.norm.weight"],
        "dec.out_proj.weight": state["lm_head.weight"],
    }
    for i in range(config.num_hidden_layers):
        prefix = f"model.layers.{i}."
        tensors[f"dec.{i}.attn_self_norm.gamma"] = state[prefix + "input_layernorm.weight"]
        tensors[f"dec.{i}.ffn_norm.gamma"] = state[prefix + "post_attention_layernorm.weight"]
        for theirs, ours in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"),
                             ("o_proj", "out")):
            source = f"{prefix}self_attn.{theirs}"
            tensors[f"dec.{i}.attn_self_{ours}.weight"] = state[source + ".weight"]
            if ours != "out" and config.model_type == "qwen2":
                tensors[f"dec.{i}.attn_self_{ours}.bias"] = state[source + ".bias"]
        tensors[f"dec.{i}.ffn_gate_up.weight"] = np.concatenate(
            [state[prefix + "mlp.gate_proj.weight"], state[prefix + "mlp.up_proj.weight"]])
        tensors[f"dec.{i}.ffn_down.weight"] = state[prefix + "mlp.down_proj.weight"]
    return tensors


def assert_same_tensors(ours: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(ours) == sorted(expected)
    for name, value in expected.items():
        assert ours[name].dtype == np.float32, name
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


# ---------------------------------------------------------------------------------------------
# weights


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_tensors_equal_the_transformers_state_dict(built, name: str) -> None:
    directory, model = built[name]
    metadata, tensors = load_llama_hf(directory)
    assert_same_tensors(tensors, expected_tensors(model))
    # A tied output projection is the embedding array itself: the writer stores it once.
    tied = VARIANTS[name]["tied"]
    assert (tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]) == tied
    assert metadata["model.qkv_bias"] == bool(VARIANTS[name].get("qwen2"))


def test_bf16_and_f16_checkpoints_widen_exactly(tmp_path: Path) -> None:
    for dtype in (torch.bfloat16, torch.float16):
        model = build_llama(tmp_path / str(dtype), kv_heads=2, qwen2=True, dtype=dtype)
        _, tensors = load_llama_hf(tmp_path / str(dtype))
        assert_same_tensors(tensors, expected_tensors(model))


def test_sharded_checkpoint_reads_like_a_single_file(tmp_path: Path) -> None:
    model = build_llama(tmp_path, kv_heads=2, tied=True, layers=3, seed=1, max_shard_size="40KB")
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    assert (tmp_path / "model.safetensors.index.json").is_file()
    _, tensors = load_llama_hf(tmp_path)
    assert_same_tensors(tensors, expected_tensors(model))
    assert tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]


def test_tied_model_with_a_stored_different_lm_head_uses_it(built, tmp_path: Path) -> None:
    # transformers 5 loads a stored lm_head that differs from the embeddings untied.
    from safetensors.numpy import load_file, save_file

    directory = copy_of(built, "llama_gqa_tied", tmp_path)
    state = load_file(directory / "model.safetensors")
    state["lm_head.weight"] = state["model.embed_tokens.weight"][::-1].copy()
    save_file(state, directory / "model.safetensors")
    _, tensors = load_llama_hf(directory)
    np.testing.assert_array_equal(tensors["dec.out_proj.weight"], state["lm_head.weight"])
    # An identical stored copy collapses into the embedding array.
    state["lm_head.weight"] = state["model.embed_tokens.weight"].copy()
    save_file(state, directory / "model.safetensors")
    _, tensors = load_llama_hf(directory)
    assert tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]


def test_llama_attention_bias_with_zero_output_bias(tmp_path: Path) -> None:
    model = build_llama(tmp_path, attention_bias=True)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.bias.zero_()
    model.save_pretrained(tmp_path)
    metadata, tensors = load_llama_hf(tmp_path)
    assert metadata["model.qkv_bias"] is True
    state = {name: value.numpy() for name, value in model.state_dict().items()}
    np.testing.assert_array_equal(tensors["dec.1.attn_self_k.bias"],
                                  state["model.layers.1.self_attn.k_proj.bias"])
    assert not any(name.startswith("dec.0.attn_self_out.bias") for name in tensors)


# ---------------------------------------------------------------------------------------------
# metadata


def test_metadata_of_a_llama_model(built) -> None:
    directory, model = built["llama_gqa_tied"]
    metadata, _ = load_llama_hf(directory)
    raw = (directory / "tokenizer.json").read_bytes()
    tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
    assert metadata == {
        "general.architecture": "llama",
        "general.name": "llama_gqa_tied",
        "general.source": str(directory.resolve()),
        "general.converter": metadata["general.converter"],
        "model.d_model": 64,
        "model.decoder_layers": 3,
        "model.decoder_heads": 4,
        "model.kv_heads": 2,
        "model.decoder_ffn_dim": 96,
        "model.activation": "swish",
        "model.layer_norm_epsilon": 1e-5,
        "model.max_positions": 128,
        "model.target_vocab_size": 300,
        "model.rope_base": 10000.0,
        "model.rotary_dim": 16,
        "model.rotary_layout": "half_split",
        "model.qkv_bias": False,
        "tokens.bos_id": llama_models.BOS_ID,
        "tokens.eos_id": llama_models.EOS_ID,
        "vocab.target": [tokenizer.id_to_token(i) for i in range(300)],
        "tokenizer.type": "huggingface",
        "tokenizer.target_model": raw,
        "tokenizer.add_bos": True,
        "tokenizer.chat_template": llama_models.CHAT_TEMPLATE,
        "generation.beam_size": 1,
        "generation.max_length": 127,
        "generation.length_penalty": 1.0,
        "generation.suppressed_ids": [],
        "generation.forced_eos": False,
        "generation.search_convention": "transformers",
    }
    assert metadata["general.converter"].endswith("(llama_hf)")


def test_metadata_of_a_qwen2_model(built) -> None:
    metadata, _ = load_llama_hf(built["qwen2_gqa"][0])
    assert metadata["model.rope_base"] == 1e6
    assert metadata["model.qkv_bias"] is True
    # bos_token_id is null: BOS is the eos id, and the tokenizer adds none.
    assert metadata["tokens.bos_id"] == metadata["tokens.eos_id"] == llama_models.EOS_ID
    assert metadata["tokenizer.add_bos"] is False


def test_eos_list_pad_and_generation_stop_ids(built, tmp_path: Path) -> None:
    directory = copy_of(built, "llama_mha", tmp_path)
    edit_config(directory, eos_token_id=[llama_models.IM_END_ID, llama_models.EOS_ID],
                pad_token_id=llama_models.EOS_ID)
    generation = json.loads((directory / "generation_config.json").read_text())
    generation["eos_token_id"] = [llama_models.IM_END_ID, llama_models.IM_START_ID]
    (directory / "generation_config.json").write_text(json.dumps(generation))
    metadata, _ = load_llama_hf(directory)
    assert metadata["tokens.eos_id"] == llama_models.IM_END_ID
    assert metadata["tokens.stop_ids"] == [llama_models.EOS_ID, llama_models.IM_START_ID]
    assert metadata["tokens.pad_id"] == llama_models.EOS_ID


def test_transformers_4_config_keys(built, tmp_path: Path) -> None:
    directory = copy_of(built, "llama_mha", tmp_path)
    edit_config(directory, rope_parameters=..., rope_theta=500000.0, rope_scaling=None,
                head_dim=16)
    metadata, _ = load_llama_hf(directory)
    assert metadata["model.rope_base"] == 500000.0
    edit_config(directory, rope_theta=..., rope_scaling={"type": "default"})
    assert load_llama_hf(directory)[0]["model.rope_base"] == 10000.0


def test_gelu_tanh_activation(built, tmp_path: Path) -> None:
    directory = copy_of(built, "llama_mqa", tmp_path)
    edit_config(directory, hidden_act="gelu_pytorch_tanh")
    assert load_llama_hf(directory)[0]["model.activation"] == "gelu_tanh"


def test_tokenizer_keys(built, tmp_path: Path) -> None:
    # A vocabulary padded past the tokenizer gets placeholder pieces.
    padded = tmp_path / "padded"
    build_llama(padded, vocab_size=320, tokenizer_vocab_size=300, add_bos_token=False,
                chat_template=None)
    metadata, _ = load_llama_hf(padded)
    assert len(metadata["vocab.target"]) == 320
    assert metadata["vocab.target"][:4] == llama_models.SPECIAL_TOKENS
    assert metadata["vocab.target"][300:] == [f"<unused{i}>" for i in range(300, 320)]
    # tokenizer_config.json's add_bos_token wins over the post-processor.
    assert metadata["tokenizer.add_bos"] is False
    assert "tokenizer.chat_template" not in metadata
    # chat_template.jinja (transformers 5's file) is read first.
    (padded / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    assert load_llama_hf(padded)[0]["tokenizer.chat_template"] == "{{ messages[0]['content'] }}"


# ---------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(("changes", "message"), [
    ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0}},
     "rope_parameters.rope_type 'yarn' is not supported"),
    ({"rope_parameters": ..., "rope_theta": 10000.0,
      "rope_scaling": {"type": "linear", "factor": 2.0}},
     "rope_scaling.rope_type 'linear' is not supported"),
    ({"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                          "partial_rotary_factor": 0.5}},
     "partial_rotary_factor 0.5 is not supported"),
    ({"mlp_bias": True}, "mlp_bias is true"),
    ({"head_dim": 32}, "head_dim 32 differs from hidden_size / num_attention_heads = 16"),
    ({"hidden_act": "relu"}, "hidden_act 'relu' is not supported"),
    ({"num_key_value_heads": 3}, "num_key_value_heads 3 does not divide"),
    ({"num_hidden_layers": 3}, "no tensor 'model.layers.2.input_layernorm.weight'"),
    ({"intermediate_size": 64},
     "tensor 'model.layers.0.mlp.down_proj.weight' has shape [64, 96], expected [64, 64]"),
    ({"vocab_size": 301},
     "tensor 'model.embed_tokens.weight' has shape [300, 64], expected [301, 64]"),
    ({"eos_token_id": 300}, "eos_token_id must be ids below the vocabulary size 300"),
    ({"use_sliding_window": True, "sliding_window": 64}, "sliding-window attention"),
    ({"layer_types": ["sliding_attention", "full_attention"]}, "only full attention"),
    ({"model_type": "mistral"}, "model_type is 'mistral'"),
])
def test_refusals(built, tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    directory = copy_of(built, "llama_mha", tmp_path)
    edit_config(directory, **changes)
    with pytest.raises(ConversionError, match=re.escape(message)):
        load_llama_hf(directory)


def test_refuses_missing_and_unexpected_tensors(built, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    directory = copy_of(built, "llama_mha", tmp_path)
    state = load_file(directory / "model.safetensors")
    original = dict(state)
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file(state, directory / "model.safetensors")
    with pytest.raises(ConversionError, match="no tensor 'model.layers.1.mlp.up_proj.weight'"):
        load_llama_hf(directory)

    state = dict(original)
    del state["lm_head.weight"]
    save_file(state, directory / "model.safetensors")
    with pytest.raises(ConversionError, match="no tensor 'lm_head.weight' and config.json does "
                       "not tie it"):
        load_llama_hf(directory)

    state = dict(original, **{"model.layers.0.mlp.up_proj.bias": np.zeros(96, np.float32)})
    save_file(state, directory / "model.safetensors")
    with pytest.raises(ConversionError, match="unexpected tensors .*mlp.up_proj.bias"):
        load_llama_hf(directory)


def test_refuses_a_nonzero_attention_output_bias(tmp_path: Path) -> None:
    build_llama(tmp_path, attention_bias=True)
    with pytest.raises(ConversionError, match=r"'model.layers.0.self_attn.o_proj.bias' is not "
                       "zero"):
        load_llama_hf(tmp_path)


def test_refuses_missing_files(built, tmp_path: Path) -> None:
    directory = copy_of(built, "qwen2_gqa", tmp_path)
    (directory / "tokenizer.json").unlink()
    with pytest.raises(ConversionError, match="tokenizer.json: missing"):
        load_llama_hf(directory)
    directory = copy_of(built, "llama_mqa", tmp_path)
    (directory / "model.safetensors").unlink()
    with pytest.raises(ConversionError, match="no model.safetensors"):
        load_llama_hf(directory)


# ---------------------------------------------------------------------------------------------
# detection and the written file


def test_detect_model_format(built, tmp_path: Path) -> None:
    assert detect_model_format(built["llama_mha"][0]) == "llama_hf"
    assert detect_model_format(built["qwen2_gqa"][0]) == "llama_hf"
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ConversionError, match="model_type 'bert'; only Marian \\(OPUS-MT\\), "
                       "M2M100 / NLLB-200, Llama and Qwen2"):
        detect_model_format(tmp_path)


@pytest.mark.parametrize("name", ["llama_gqa_tied", "qwen2_gqa"])
def test_written_file_reads_back(built, tmp_path: Path, name: str) -> None:
    from pytransformer.format import read_model

    directory, model = built[name]
    path = convert_llama_hf(directory, tmp_path / f"{name}.ptm")
    metadata, tensors = read_model(path)
    expected_metadata, _ = load_llama_hf(directory)
    assert metadata == expected_metadata
    assert_same_tensors(tensors, expected_tensors(model))
    assert (tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]) == \
        VARIANTS[name]["tied"]


def test_bf16_checkpoint_written_as_bf16_is_exact(tmp_path: Path) -> None:
    from pytransformer import _core
    from pytransformer.format import read_model

    model = build_llama(tmp_path / "bf16", kv_heads=2, tied=True, dtype=torch.bfloat16)
    path = convert_llama_hf(tmp_path / "bf16", tmp_path / "bf16.ptm", quantize="bf16")
    assert _core.ModelFile(str(path)).tensor_info("dec.0.ffn_gate_up.weight")[0] == "bf16"
    _, tensors = read_model(path)
    assert_same_tensors(tensors, expected_tensors(model))
