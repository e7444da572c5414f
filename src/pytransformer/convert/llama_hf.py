"""Converter of Hugging Face Llama-family directories (Llama, SmolLM, Qwen2) into a
pytransformer file, without torch.

The directory is what `LlamaForCausalLM` / `Qwen2ForCausalLM.save_pretrained` and a tokenizer's
`save_pretrained` write: config.json, model.safetensors or sharded model-*.safetensors with
model.safetensors.index.json (read with numpy only), tokenizer.json (Hugging Face `tokenizers`
format, read with the `tokenizers` package), and optionally tokenizer_config.json,
chat_template.jinja and generation_config.json.

What changes transformers' outputs is carried into the metadata (docs/format.md, "Decoder-only
language models"), and what the format cannot express is refused with a ConversionError naming
the key or tensor:
- architecture: RMSNorm pre-norm blocks, grouped-query attention, rotary embeddings in
  `half_split` layout (transformers' `rotate_half`) over the whole head with base `rope_theta`
  (top-level in transformers 4 configs, under `rope_parameters` in transformers 5), a gated
  feed-forward network (`silu` -> `swish`, `gelu_pytorch_tanh` -> `gelu_tanh`). Refused: rope
  scaling other than "default", `head_dim` other than hidden_size / heads,
  `partial_rotary_factor` other than 1 (transformers' Llama and Qwen2 rotate the whole head
  whatever it says), `mlp_bias`, a non-zero `o_proj` bias (Llama's `attention_bias`), sliding
  window attention (Qwen2);
- weights: `gate_proj` and `up_proj` rows concatenated into `ffn_gate_up`; Q/K/V biases for
  Qwen2 (always) and Llama's `attention_bias`; the output projection is `lm_head.weight`, or the
  embedding array itself when the model ties them and the checkpoint does not store it (the same
  array, so the writer stores it once); every stored tensor is widened to float32;
- tokens: `eos_token_id` may be a list (its first id is `tokens.eos_id`, the others, and the other
  ids of generation_config.json's `eos_token_id`, are `tokens.stop_ids`); a null `bos_token_id`
  (Qwen2) becomes the eos id; `tokenizer.add_bos` is tokenizer_config.json's `add_bos_token`,
  else whether the tokenizer's post-processor puts BOS in front of a text;
- generation defaults: greedy (beam 1), up to 256 new tokens (fewer when the context is shorter),
  transformers' search conventions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pytransformer.convert._common import ConversionError, converter_name, read_json
from pytransformer.convert._llama_layers import layer_tensors
from pytransformer.convert._safetensors import read_safetensors

MODEL_TYPES = ("llama", "qwen2")
# transformers' ACT2FN names -> model.activation (the gate's activation).
_ACTIVATIONS = {"silu": "swish", "swish": "swish", "gelu_pytorch_tanh": "gelu_tanh"}
_DEFAULT_MAX_NEW_TOKENS = 256
_DEFAULT_ROPE_THETA = 10000.0

# Per-layer tensors: transformers (under model.layers.{i}.) -> ours (under dec.{i}.).
# The checkpoint's names of a layer's tensors by role (_llama_layers.LAYER_ROLES).
_LAYER_NAMES = {
    "attn_norm": "model.layers.{i}.input_layernorm.weight",
    "q": "model.layers.{i}.self_attn.q_proj.weight",
    "k": "model.layers.{i}.self_attn.k_proj.weight",
    "v": "model.layers.{i}.self_attn.v_proj.weight",
    "out": "model.layers.{i}.self_attn.o_proj.weight",
    "ffn_norm": "model.layers.{i}.post_attention_layernorm.weight",
    "gate": "model.layers.{i}.mlp.gate_proj.weight",
    "up": "model.layers.{i}.mlp.up_proj.weight",
    "down": "model.layers.{i}.mlp.down_proj.weight",
    "q_bias": "model.layers.{i}.self_attn.q_proj.bias",
    "k_bias": "model.layers.{i}.self_attn.k_proj.bias",
    "v_bias": "model.layers.{i}.self_attn.v_proj.bias",
    "out_bias": "model.layers.{i}.self_attn.o_proj.bias",
}


def convert_llama_hf(model_dir: str | Path, output_path: str | Path,
                     quantize: str | None = None) -> Path:
    """Converts the Hugging Face Llama / Qwen2 / SmolLM model in `model_dir` into the
    pytransformer file `output_path`.

    quantize: None keeps float32 weights (bf16 and f16 checkpoints are widened exactly); other
    values are passed to pytransformer.format.write_model ("f16", "bf16", "int8", "int8_all",
    "q8_0", "q4_1").
    Returns the output path. Raises ConversionError (a ValueError) naming the file at fault.
    """
    from pytransformer.format import write_model

    metadata, tensors = load_llama_hf(model_dir)
    output_path = Path(output_path)
    write_model(output_path, metadata, tensors, quantize=quantize)
    return output_path


def load_llama_hf(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and tensors (our names, float32) of the model in `model_dir`."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ConversionError(f"{model_dir}: not a directory")
    config_path = model_dir / "config.json"
    config = _read_required_json(config_path)
    if not isinstance(config, dict):
        raise ConversionError(f"{config_path}: expected a JSON object")
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ConversionError(f"{config_path}: model_type is {model_type!r}, expected one of "
                              f"{', '.join(repr(t) for t in MODEL_TYPES)}")
    tokenizer_config = _read_optional_json(model_dir / "tokenizer_config.json")
    generation_config = _read_optional_json(model_dir / "generation_config.json")

    metadata = _model_metadata(config, config_path)
    metadata.update(_token_metadata(config, generation_config, metadata, model_dir))
    metadata.update(_tokenizer_metadata(tokenizer_config, metadata, model_dir))
    metadata.update(_generation_metadata(metadata))
    metadata.update({
        "general.architecture": "llama",
        "general.name": model_dir.resolve().name,
        "general.source": str(config.get("_name_or_path") or model_dir.resolve()),
        "general.converter": converter_name("llama_hf"),
    })
    tensors = _tensors(_read_state_dict(model_dir), config, metadata, model_dir)
    return metadata, tensors


# ---------------------------------------------------------------------------------------------
# config.json -> model.*


def _model_metadata(config: dict[str, Any], path: Path) -> dict[str, Any]:
    qwen2 = config["model_type"] == "qwen2"
    hidden = _config_int(config, "hidden_size", path)
    layers = _config_int(config, "num_hidden_layers", path)
    heads = _config_int(config, "num_attention_heads", path)
    kv_heads = config.get("num_key_value_heads")
    kv_heads = heads if kv_heads is None else _config_int(config, "num_key_value_heads", path)
    if hidden % heads:
        raise ConversionError(f"{path}: num_attention_heads {heads} does not divide hidden_size "
                              f"{hidden}")
    if heads % kv_heads:
        raise ConversionError(f"{path}: num_key_value_heads {kv_heads} does not divide "
                              f"num_attention_heads {heads}")
    head_dim = hidden // heads
    if config.get("head_dim") is not None and config["head_dim"] != head_dim:
        raise ConversionError(f"{path}: head_dim {config['head_dim']!r} differs from hidden_size "
                              f"/ num_attention_heads = {head_dim}: not supported (the format "
                              "derives the head size)")

    activation = config.get("hidden_act", "silu")
    if activation not in _ACTIVATIONS:
        raise ConversionError(f"{path}: hidden_act {activation!r} is not supported (supported: "
                              f"{', '.join(_ACTIVATIONS)})")
    if config.get("mlp_bias"):
        raise ConversionError(f"{path}: mlp_bias is true: feed-forward biases are not supported")
    _check_full_attention(config, path)

    epsilon = config.get("rms_norm_eps", 1e-6)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) \
            or not 0 < epsilon <= 1:
        raise ConversionError(f"{path}: rms_norm_eps must be in (0, 1], got {epsilon!r}")

    return {
        "model.d_model": hidden,
        "model.decoder_layers": layers,
        "model.decoder_heads": heads,
        "model.kv_heads": kv_heads,
        "model.decoder_ffn_dim": _config_int(config, "intermediate_size", path),
        "model.activation": _ACTIVATIONS[activation],
        "model.layer_norm_epsilon": float(epsilon),
        "model.max_positions": _config_int(config, "max_position_embeddings", path),
        "model.target_vocab_size": _config_int(config, "vocab_size", path),
        "model.rope_base": _rope_theta(config, path),
        "model.rotary_dim": head_dim,
        "model.rotary_layout": "half_split",
        # Qwen2 always has Q/K/V biases; Llama has them (and an o_proj bias) with attention_bias.
        "model.qkv_bias": qwen2 or bool(config.get("attention_bias", False)),
    }


def _rope_theta(config: dict[str, Any], path: Path) -> float:
    """rope_theta, refusing rope variants the format cannot express. transformers 4 keeps
    `rope_theta` at the top level and scaling in `rope_scaling`; transformers 5 keeps both in
    `rope_parameters` ({"rope_theta", "rope_type", ...})."""
    theta = config.get("rope_theta")
    for key in ("rope_scaling", "rope_parameters"):
        params = config.get(key)
        if params is None:
            continue
        if not isinstance(params, dict):
            raise ConversionError(f"{path}: {key} must be an object, got {params!r}")
        if any(isinstance(value, dict) for value in params.values()):
            raise ConversionError(f"{path}: {key} is given per layer type: not supported")
        rope_type = params.get("rope_type", params.get("type"))
        if rope_type not in (None, "default"):
            raise ConversionError(f"{path}: {key}.rope_type {rope_type!r} is not supported "
                                  "(only 'default' rotary embeddings, without scaling)")
        if params.get("rope_theta") is not None:
            theta = params["rope_theta"]
        factor = params.get("partial_rotary_factor")
        if factor is not None and factor != 1:
            raise ConversionError(f"{path}: {key}.partial_rotary_factor {factor!r} is not "
                                  "supported (transformers' Llama and Qwen2 rotate whole heads)")
    factor = config.get("partial_rotary_factor")
    if factor is not None and factor != 1:
        raise ConversionError(f"{path}: partial_rotary_factor {factor!r} is not supported "
                              "(transformers' Llama and Qwen2 rotate whole heads)")
    if theta is None:
        theta = _DEFAULT_ROPE_THETA
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) \
            or not math.isfinite(theta) or theta <= 1:
        raise ConversionError(f"{path}: rope_theta must be a finite number above 1, got "
                              f"{theta!r}")
    return float(theta)


def _check_full_attention(config: dict[str, Any], path: Path) -> None:
    """Refuses sliding-window attention (Qwen2's use_sliding_window / layer_types)."""
    layer_types = config.get("layer_types")
    if layer_types is not None:
        other = sorted({t for t in layer_types if t != "full_attention"})
        if other:
            raise ConversionError(f"{path}: layer_types has {', '.join(map(repr, other))}: only "
                                  "full attention is supported")
    if config.get("use_sliding_window") and config.get("sliding_window") is not None:
        raise ConversionError(f"{path}: use_sliding_window is true: sliding-window attention "
                              "is not supported")


def _config_int(config: dict[str, Any], key: str, path: Path) -> int:
    if key not in config:
        raise ConversionError(f"{path}: {key} is missing")
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConversionError(f"{path}: {key} must be a positive integer, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# special ids -> tokens.*


def _token_metadata(config: dict[str, Any], generation: dict[str, Any],
                    metadata: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    vocab_size = metadata["model.target_vocab_size"]
    eos_ids = _id_list(config.get("eos_token_id"), "eos_token_id", vocab_size, path)
    generation_eos = _id_list(generation.get("eos_token_id"), "eos_token_id", vocab_size,
                              model_dir / "generation_config.json")
    if not eos_ids:
        eos_ids = generation_eos
    if not eos_ids:
        raise ConversionError(f"{path}: eos_token_id is missing (nor in generation_config.json)")
    stop_ids = []
    for index in eos_ids[1:] + generation_eos:
        if index != eos_ids[0] and index not in stop_ids:
            stop_ids.append(index)

    bos_ids = _id_list(config.get("bos_token_id"), "bos_token_id", vocab_size, path)
    tokens: dict[str, Any] = {
        "tokens.eos_id": eos_ids[0],
        "tokens.bos_id": bos_ids[0] if bos_ids else eos_ids[0],
    }
    if stop_ids:
        tokens["tokens.stop_ids"] = stop_ids
    pad_ids = _id_list(config.get("pad_token_id"), "pad_token_id", vocab_size, path)
    if pad_ids:
        tokens["tokens.pad_id"] = pad_ids[0]
    return tokens


def _id_list(value: Any, key: str, vocab_size: int, path: Path) -> list[int]:
    """An id, a list of ids or null as a list, each checked to lie in the vocabulary."""
    values = [] if value is None else value if isinstance(value, list) else [value]
    for index in values:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < vocab_size:
            raise ConversionError(f"{path}: {key} must be ids below the vocabulary size "
                                  f"{vocab_size}, got {value!r}")
    return list(values)


# ---------------------------------------------------------------------------------------------
# tokenizer.json, tokenizer_config.json -> vocab.target, tokenizer.*


def _tokenizer_metadata(tokenizer_config: dict[str, Any], metadata: dict[str, Any],
                        model_dir: Path) -> dict[str, Any]:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise ConversionError(f"{path}: missing (only Hugging Face `tokenizers` tokenizers are "
                              "supported)")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ConversionError(f"{path}: reading it needs the tokenizers package "
                              "(pip install tokenizers)") from None
    raw = path.read_bytes()
    try:
        tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
    except Exception as error:  # tokenizers raises plain Exception; UnicodeDecodeError too
        raise ConversionError(f"{path}: not a valid tokenizer: {error}") from None

    vocab_size = metadata["model.target_vocab_size"]
    largest = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1)
    if largest >= vocab_size:
        raise ConversionError(f"{path}: the tokenizer has id {largest}, outside the model's "
                              f"vocabulary of {vocab_size}")
    # Ids past the tokenizer's (embedding rows padded to a round size) are never produced.
    pieces = []
    for index in range(vocab_size):
        piece = tokenizer.id_to_token(index)
        pieces.append(piece if piece is not None else f"<unused{index}>")

    add_bos = tokenizer_config.get("add_bos_token")
    if add_bos is None:
        encoded = tokenizer.encode("a", add_special_tokens=True).ids
        add_bos = bool(encoded) and encoded[0] == metadata["tokens.bos_id"]
    result: dict[str, Any] = {
        "vocab.target": pieces,
        "tokenizer.type": "huggingface",
        "tokenizer.target_model": raw,
        "tokenizer.add_bos": bool(add_bos),
    }
    template = _chat_template(tokenizer_config, model_dir)
    if template is not None:
        result["tokenizer.chat_template"] = template
    unk = _unknown_piece(raw, tokenizer)
    if unk is not None:
        result["tokens.unk_id"] = unk
    return result


def _chat_template(tokenizer_config: dict[str, Any], model_dir: Path) -> str | None:
    """chat_template.jinja (what transformers 5 writes) or tokenizer_config.json's
    chat_template: a string, or a list of {"name", "template"} whose "default" entry is used."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        try:
            return jinja.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConversionError(f"{jinja}: not valid UTF-8") from None
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):
        named = {entry.get("name"): entry.get("template") for entry in template
                 if isinstance(entry, dict)}
        template = named.get("default")
    if template is not None and not isinstance(template, str):
        raise ConversionError(f"{model_dir / 'tokenizer_config.json'}: chat_template must be a "
                              "string")
    return template


def _unknown_piece(raw: bytes, tokenizer: Any) -> int | None:
    """The id of the tokenizer model's unknown piece (SentencePiece-derived BPE models have
    one; byte-level BPE does not)."""

    model = json.loads(raw).get("model")
    if not isinstance(model, dict):
        return None
    if isinstance(model.get("unk_token"), str):  # BPE, WordPiece
        return tokenizer.token_to_id(model["unk_token"])
    unk_id = model.get("unk_id")  # Unigram
    return unk_id if isinstance(unk_id, int) and not isinstance(unk_id, bool) else None


# ---------------------------------------------------------------------------------------------
# generation.*


def _generation_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    max_positions = metadata["model.max_positions"]
    return {
        "generation.beam_size": 1,
        # Leave room for at least one prompt token in the context.
        "generation.max_length": max(1, min(_DEFAULT_MAX_NEW_TOKENS, max_positions - 1)),
        "generation.length_penalty": 1.0,
        "generation.suppressed_ids": [],
        "generation.forced_eos": False,
        "generation.search_convention": "transformers",
    }


# ---------------------------------------------------------------------------------------------
# weights


def _read_state_dict(model_dir: Path) -> dict[str, np.ndarray]:
    single = model_dir / "model.safetensors"
    if single.is_file():
        return read_safetensors(single)
    index_path = model_dir / "model.safetensors.index.json"
    if index_path.is_file():
        index = read_json(index_path)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConversionError(f"{index_path}: no weight_map")
        state: dict[str, np.ndarray] = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = model_dir / str(shard)
            if not shard_path.is_file() or shard_path.resolve().parent != model_dir.resolve():
                raise ConversionError(f"{index_path}: shard {shard!r} is not a file of "
                                      f"{model_dir}")
            state.update(read_safetensors(shard_path))
        missing = sorted(set(weight_map) - set(state))
        if missing:
            raise ConversionError(f"{index_path}: tensors missing from their shards: "
                                  f"{', '.join(missing[:8])}")
        return state
    raise ConversionError(f"{model_dir}: no model.safetensors or model.safetensors.index.json "
                          "(pytorch_model.bin checkpoints are not supported: save the model "
                          "with safetensors)")


def _tensors(state: dict[str, np.ndarray], config: dict[str, Any], metadata: dict[str, Any],
             model_dir: Path) -> dict[str, np.ndarray]:
    if "model.embed_tokens.weight" not in state and "embed_tokens.weight" in state:
        # A LlamaModel checkpoint (no lm_head): names without the "model." prefix.
        state = {f"model.{name}": value for name, value in state.items()}
    used: set[str] = set()
    d = metadata["model.d_model"]
    vocab = metadata["model.target_vocab_size"]

    def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in state:
            raise ConversionError(f"{model_dir}: the checkpoint has no tensor '{name}'")
        value = state[name]
        if tuple(value.shape) != shape:
            raise ConversionError(f"{model_dir}: tensor '{name}' has shape "
                                  f"{list(value.shape)}, expected {list(shape)} from "
                                  "config.json")
        used.add(name)
        return value

    tensors = layer_tensors(metadata, _LAYER_NAMES, take, state.__contains__, str(model_dir))
    tensors["dec.final_norm.gamma"] = take("model.norm.weight", (d,))

    embed = take("model.embed_tokens.weight", (vocab, d))
    tensors["dec.embed.weight"] = embed
    if "lm_head.weight" in state:
        out_proj = take("lm_head.weight", (vocab, d))
        # Identical copies (checkpoints that store both tied names) collapse to one array.
        tied_copy = config.get("tie_word_embeddings") and np.array_equal(out_proj, embed)
        tensors["dec.out_proj.weight"] = embed if tied_copy else out_proj
    elif config.get("tie_word_embeddings"):
        tensors["dec.out_proj.weight"] = embed
    else:
        raise ConversionError(f"{model_dir}: the checkpoint has no tensor 'lm_head.weight' and "
                              "config.json does not tie it to the embeddings "
                              "(tie_word_embeddings)")

    # Rotary tables are recomputed from the metadata, as transformers does.
    used.update(name for name in state if name.endswith("rotary_emb.inv_freq"))
    unknown = sorted(set(state) - used)
    if unknown:
        raise ConversionError(f"{model_dir}: unexpected tensors for a {config['model_type']} "
                              f"model (an unsupported variant?): {', '.join(unknown[:8])}")
    return tensors


# ---------------------------------------------------------------------------------------------
# files


def _read_required_json(path: Path) -> Any:
    if not path.is_file():
        raise ConversionError(f"{path}: missing")
    return read_json(path)


def _read_optional_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    value = read_json(path)
    if not isinstance(value, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    return value
