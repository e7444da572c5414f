"""Converter of Hugging Face Marian (OPUS-MT) model directories into a pytransformer file.

The directory is what `MarianMTModel.save_pretrained` + `MarianTokenizer.save_pretrained` write:
config.json, model.safetensors (read with numpy only) or pytorch_model.bin (needs torch),
source.spm and target.spm, vocab.json (shared vocabulary) or vocab.json + target_vocab.json
(`separate_vocabs`), and optionally tokenizer_config.json and generation_config.json.

Everything that changes the outputs of transformers' MarianMTModel / MarianTokenizer is carried
into the metadata (docs/format.md):
- architecture: post-norm (transformers' Marian is always post-norm, whatever `normalize_before`
  says), no embedding LayerNorm, LayerNorm epsilon 1e-5 (nn.LayerNorm's default), biases on
  every linear map, `scale_embedding`, the activation, sinusoidal positions in `halves` layout
  with `paper` frequencies starting at position 0 (MarianSinusoidalPositionalEmbedding);
- weights: tied embeddings follow transformers 5's loading rule: a weight present in the
  checkpoint is used, a tied one absent from it takes its tie source (the same array, so the
  writer stores it once); `final_logits_bias` becomes `dec.out_proj.bias` unless it is all zero;
- tokens: EOS appended to the source, target-language tokens (`>>xx<<` vocabulary entries);
- generation defaults: `num_beams`, `length_penalty`, `bad_words_ids` and `suppress_tokens`
  (single tokens) as suppressed ids, `forced_eos_token_id`, `renormalize_logits`,
  `no_repeat_ngram_size`, and the
  length limit converted to generated tokens: `max_new_tokens` if set, else `max_length - 1`
  (transformers' `max_length` counts the decoder start token), else transformers' default of
  20 new tokens; always capped at `max_position_embeddings`.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pytransformer.convert._common import ConversionError, converter_name, read_json
from pytransformer.convert._safetensors import read_safetensors

# transformers' ACT2FN names -> model.activation.
_ACTIVATIONS = {
    "relu": "relu",
    "swish": "swish",
    "silu": "swish",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
}
# transformers' default when a model records no length limit: 20 new tokens.
_TRANSFORMERS_DEFAULT_NEW_TOKENS = 20
# Generation settings that change outputs but have no equivalent in our file: warned about.
_UNSUPPORTED_GENERATION = {
    "do_sample": False,
    "encoder_no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "early_stopping": False,
    "min_length": 0,  # counts the decoder start token: 0 and 1 have no effect
    "min_new_tokens": None,
    "forced_bos_token_id": None,
    "begin_suppress_tokens": None,
    "exponential_decay_length_penalty": None,
}
_LANGUAGE_TOKEN = re.compile(r"^>>.+<<$")

# Per-layer module names: transformers -> ours.
_ENCODER_MODULES = {
    "self_attn.q_proj": "attn_self_q",
    "self_attn.k_proj": "attn_self_k",
    "self_attn.v_proj": "attn_self_v",
    "self_attn.out_proj": "attn_self_out",
    "self_attn_layer_norm": "attn_self_norm",
    "fc1": "ffn_up",
    "fc2": "ffn_down",
    "final_layer_norm": "ffn_norm",
}
_DECODER_MODULES = {
    **_ENCODER_MODULES,
    "encoder_attn.q_proj": "attn_cross_q",
    "encoder_attn.k_proj": "attn_cross_k",
    "encoder_attn.v_proj": "attn_cross_v",
    "encoder_attn.out_proj": "attn_cross_out",
    "encoder_attn_layer_norm": "attn_cross_norm",
}
_LAYER_NORM_PARAMS = {"weight": "gamma", "bias": "beta"}


def convert_marian(model_dir: str | Path, output_path: str | Path,
                   quantize: str | None = None) -> Path:
    """Converts the Marian model in `model_dir` into the pytransformer file `output_path`.

    quantize: None keeps float32 weights; other values are passed to
    pytransformer.format.write_model (e.g. "int8", "f16").
    Returns the output path. Raises ConversionError (a ValueError) naming the file at fault.
    """
    from pytransformer.format import write_model

    metadata, tensors = load_marian(model_dir)
    output_path = Path(output_path)
    write_model(output_path, metadata, tensors, quantize=quantize)
    return output_path


def load_marian(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and tensors (our names, float32) of the Marian model in `model_dir`."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ConversionError(f"{model_dir}: not a directory")
    config = _read_required_json(model_dir / "config.json")
    model_type = config.get("model_type")
    if model_type != "marian":
        raise ConversionError(f"{model_dir / 'config.json'}: model_type is {model_type!r}, "
                              "expected 'marian'")
    tokenizer_config = _read_optional_json(model_dir / "tokenizer_config.json")
    generation_config = _read_optional_json(model_dir / "generation_config.json")
    if not generation_config:
        # Older checkpoints keep the generation settings in config.json.
        generation_config = config

    metadata = _model_metadata(config, model_dir)
    metadata.update(_vocabulary_metadata(config, tokenizer_config, model_dir))
    metadata.update(_generation_metadata(generation_config, config, metadata))
    metadata.update({
        "general.architecture": "transformer-seq2seq",
        "general.name": model_dir.resolve().name,
        "general.source": str(config.get("_name_or_path") or model_dir.resolve()),
        "general.converter": converter_name("marian"),
    })
    tensors = _tensors(_read_state_dict(model_dir), config, metadata, model_dir)
    return metadata, tensors


# ---------------------------------------------------------------------------------------------
# config.json -> model.*


def _model_metadata(config: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    activation_name = config.get("activation_function", "gelu")
    if activation_name not in _ACTIVATIONS:
        raise ConversionError(f"{path}: activation_function {activation_name!r} is not supported "
                              f"(supported: {', '.join(_ACTIVATIONS)})")
    vocab_size = _config_int(config, "vocab_size", path, 58101)
    shared = bool(config.get("share_encoder_decoder_embeddings", True))
    decoder_vocab_size = config.get("decoder_vocab_size") or vocab_size
    return {
        "model.d_model": _config_int(config, "d_model", path, 1024),
        "model.encoder_layers": _config_int(config, "encoder_layers", path, 12),
        "model.decoder_layers": _config_int(config, "decoder_layers", path, 12),
        "model.encoder_heads": _config_int(config, "encoder_attention_heads", path, 16),
        "model.decoder_heads": _config_int(config, "decoder_attention_heads", path, 16),
        "model.encoder_ffn_dim": _config_int(config, "encoder_ffn_dim", path, 4096),
        "model.decoder_ffn_dim": _config_int(config, "decoder_ffn_dim", path, 4096),
        "model.activation": _ACTIVATIONS[activation_name],
        "model.pre_norm": False,
        "model.layer_norm_epsilon": 1e-5,
        "model.scale_embedding": bool(config.get("scale_embedding", False)),
        "model.embedding_norm": False,
        "model.position_layout": "halves",
        "model.position_frequencies": "paper",
        "model.position_offset": 0,
        "model.max_positions": _config_int(config, "max_position_embeddings", path, 1024),
        "model.source_vocab_size": vocab_size,
        # MarianMTModel sizes the output by vocab_size when the embeddings are shared.
        "model.target_vocab_size": vocab_size if shared else int(decoder_vocab_size),
        "model.linear_bias": True,
        # Settled in _tensors() from final_logits_bias.
        "model.output_bias": False,
    }


def _config_int(config: dict[str, Any], key: str, path: Path, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConversionError(f"{path}: {key} must be a positive integer, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# vocabularies, SentencePiece models, special ids -> vocab.*, tokenizer.*, tokens.*


def _vocabulary_metadata(config: dict[str, Any], tokenizer_config: dict[str, Any],
                         model_dir: Path) -> dict[str, Any]:
    separate = bool(tokenizer_config.get("separate_vocabs", False))
    source_vocab_path = model_dir / "vocab.json"
    target_vocab_path = model_dir / ("target_vocab.json" if separate else "vocab.json")
    source_encoder = _read_vocab(source_vocab_path)
    target_encoder = _read_vocab(target_vocab_path) if separate else source_encoder

    shared = bool(config.get("share_encoder_decoder_embeddings", True))
    source_size = config.get("vocab_size", 58101)
    target_size = source_size if shared else (config.get("decoder_vocab_size") or source_size)
    source_vocab = _vocab_list(source_encoder, source_size, source_vocab_path)
    target_vocab = _vocab_list(target_encoder, target_size, target_vocab_path)

    unk_token = _special_token(tokenizer_config, "unk_token", "<unk>")
    eos_token = _special_token(tokenizer_config, "eos_token", "</s>")
    if unk_token not in source_encoder:
        raise ConversionError(f"{source_vocab_path}: the unknown token {unk_token!r} is missing")
    if eos_token not in source_encoder:
        raise ConversionError(f"{source_vocab_path}: the end token {eos_token!r} is missing")

    metadata: dict[str, Any] = {
        "vocab.source": source_vocab,
        "vocab.target": target_vocab,
        "tokenizer.type": "sentencepiece",
        "tokenizer.source_model": _read_bytes(model_dir / "source.spm"),
        "tokenizer.target_model": _read_bytes(model_dir / "target.spm"),
        # MarianTokenizer.build_inputs_with_special_tokens appends its eos token.
        "tokenizer.add_source_eos": True,
        "tokens.source_eos_id": source_encoder[eos_token],
        # tokens.unk_id is a target id; the source side's has its own key.
        "tokens.unk_id": target_encoder.get(unk_token, source_encoder[unk_token]),
        "tokens.source_unk_id": source_encoder[unk_token],
        "tokens.pad_id": _config_id(config, "pad_token_id", 58100, target_size, model_dir),
        "tokens.eos_id": _config_id(config, "eos_token_id", 0, target_size, model_dir),
        "tokens.decoder_start_id": _config_id(config, "decoder_start_token_id", 58100,
                                              target_size, model_dir),
    }
    languages = [piece for piece in source_encoder if _LANGUAGE_TOKEN.match(piece)]
    if languages:
        metadata["tokenizer.target_languages"] = languages
    return metadata


def _read_vocab(path: Path) -> dict[str, int]:
    encoder = _read_required_json(path)
    if not isinstance(encoder, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in encoder.items()):
        raise ConversionError(f"{path}: expected a JSON object mapping pieces to integer ids")
    return encoder


def _vocab_list(encoder: dict[str, int], size: int, path: Path) -> list[str]:
    """id -> piece for ids 0..size-1. Ids the file does not name get an empty piece, which the
    SentencePiece models never produce (transformers would show the SentencePiece piece of
    that id; such holes do not occur in published models)."""
    pieces = [""] * size
    for piece, index in encoder.items():
        if not 0 <= index < size:
            raise ConversionError(f"{path}: piece {piece!r} has id {index}, outside the "
                                  f"model's vocabulary of {size}")
        pieces[index] = piece
    return pieces


def _special_token(tokenizer_config: dict[str, Any], key: str, default: str) -> str:
    value = tokenizer_config.get(key, default)
    if isinstance(value, dict):  # a serialized AddedToken
        value = value.get("content", default)
    return str(value)


def _config_id(config: dict[str, Any], key: str, default: int, vocab_size: int,
               model_dir: Path) -> int:
    value = config.get(key, default)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
        raise ConversionError(f"{model_dir / 'config.json'}: {key} must be an id below "
                              f"{vocab_size}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# generation_config.json -> generation.*


def _generation_metadata(generation: dict[str, Any], config: dict[str, Any],
                         metadata: dict[str, Any]) -> dict[str, Any]:
    max_positions = metadata["model.max_positions"]
    target_size = metadata["model.target_vocab_size"]
    if generation.get("max_new_tokens") is not None:
        max_length = int(generation["max_new_tokens"])
    elif generation.get("max_length") is not None:
        max_length = int(generation["max_length"]) - 1
    else:
        max_length = _TRANSFORMERS_DEFAULT_NEW_TOKENS
    max_length = max(1, min(max_length, max_positions))

    suppressed: list[int] = []
    for sequence in generation.get("bad_words_ids") or []:
        if len(sequence) == 1:
            suppressed.append(int(sequence[0]))
        else:
            warnings.warn(f"bad_words_ids entry {sequence} has several tokens: not supported, "
                          "ignored", stacklevel=3)
    suppressed.extend(int(i) for i in generation.get("suppress_tokens") or [])
    suppressed = sorted({i for i in suppressed if 0 <= i < target_size})

    eos_id = generation.get("eos_token_id", metadata["tokens.eos_id"])
    if isinstance(eos_id, list):
        eos_id = eos_id[0] if len(eos_id) == 1 else eos_id
    if eos_id != metadata["tokens.eos_id"]:
        raise ConversionError(f"generation eos_token_id {eos_id!r} differs from config.json's "
                              f"{metadata['tokens.eos_id']}: not supported")
    start_id = generation.get("decoder_start_token_id", metadata["tokens.decoder_start_id"])
    if start_id is not None and start_id != metadata["tokens.decoder_start_id"]:
        metadata["tokens.decoder_start_id"] = int(start_id)

    forced_eos = generation.get("forced_eos_token_id", config.get("forced_eos_token_id"))
    if isinstance(forced_eos, list):
        forced_eos = forced_eos[0] if len(forced_eos) == 1 else forced_eos
    if forced_eos is not None and forced_eos != metadata["tokens.eos_id"]:
        raise ConversionError(f"forced_eos_token_id {forced_eos!r} is not the eos id "
                              f"{metadata['tokens.eos_id']}: not supported")

    ignored = [f"{key}={generation[key]!r}" for key, default in _UNSUPPORTED_GENERATION.items()
               if generation.get(key, default) not in (default, None)
               and not (key == "min_length" and generation[key] <= 1)]
    if ignored:
        warnings.warn("generation settings without an equivalent, ignored: " + ", ".join(ignored),
                      stacklevel=3)

    defaults = {
        "generation.beam_size": int(generation.get("num_beams") or 1),
        "generation.max_length": max_length,
        "generation.length_penalty": float(generation.get("length_penalty", 1.0)),
        "generation.suppressed_ids": suppressed,
        "generation.forced_eos": forced_eos is not None,
        "generation.renormalize_logits": bool(generation.get("renormalize_logits", False)),
        "generation.search_convention": "transformers",
    }
    if generation.get("no_repeat_ngram_size"):
        defaults["generation.no_repeat_ngram_size"] = int(generation["no_repeat_ngram_size"])
    return defaults


# ---------------------------------------------------------------------------------------------
# weights


def _read_state_dict(model_dir: Path) -> dict[str, np.ndarray]:
    state = _read_safetensors_checkpoint(model_dir)
    if state is not None:
        return state
    torch_path = model_dir / "pytorch_model.bin"
    if torch_path.exists():
        return _read_torch_checkpoint(torch_path)
    raise ConversionError(f"{model_dir}: no model.safetensors or pytorch_model.bin")


def _read_safetensors_checkpoint(model_dir: Path) -> dict[str, np.ndarray] | None:
    """The tensors of model.safetensors, or of the shards model.safetensors.index.json names;
    None when the directory has neither."""
    safetensors_path = model_dir / "model.safetensors"
    if safetensors_path.is_file():
        return read_safetensors(safetensors_path)
    index_path = model_dir / "model.safetensors.index.json"
    if not index_path.is_file():
        return None
    index = _read_required_json(index_path)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ConversionError(f"{index_path}: no weight_map")
    state: dict[str, np.ndarray] = {}
    for shard in sorted(set(weight_map.values())):
        state.update(read_safetensors(model_dir / shard))
    return state


def _read_torch_checkpoint(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ConversionError(f"{path}: reading a pytorch_model.bin needs torch "
                              "(pip install torch), or save the model as model.safetensors"
                              ) from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {name: value.detach().to(torch.float32).numpy() for name, value in state.items()
            if hasattr(value, "detach")}


def _tensors(state: dict[str, np.ndarray], config: dict[str, Any], metadata: dict[str, Any],
             model_dir: Path) -> dict[str, np.ndarray]:
    state = {_strip_prefix(name): value for name, value in state.items()}
    used: set[str] = set()
    tensors = _layer_tensors(state, metadata, model_dir, used)

    enc_embed, dec_embed, out_proj = _embeddings(state, config, model_dir, used)
    tensors["enc.embed.weight"] = enc_embed
    tensors["dec.embed.weight"] = dec_embed
    tensors["dec.out_proj.weight"] = out_proj

    if "final_logits_bias" in state:
        used.add("final_logits_bias")
        bias = state["final_logits_bias"].reshape(-1)
        if np.any(bias != 0):
            tensors["dec.out_proj.bias"] = bias
            metadata["model.output_bias"] = True

    # Sinusoidal tables are recomputed from the metadata, as transformers does.
    used.update(name for name in state if name.endswith("embed_positions.weight"))
    unknown = sorted(set(state) - used)
    if unknown:
        raise ConversionError(f"{model_dir}: unexpected tensors for a Marian model "
                              f"(an unsupported variant?): {', '.join(unknown[:8])}")
    return tensors


def _layer_tensors(state: dict[str, np.ndarray], metadata: dict[str, Any], model_dir: Path,
                  used: set[str]) -> dict[str, np.ndarray]:
    """Every encoder and decoder layer's tensors under our names, from the checkpoint's
    `model.{encoder,decoder}.layers.{i}.*` (Marian's and M2M100's layer modules are named
    alike); the names taken are added to `used`. ConversionError for a missing one."""
    tensors: dict[str, np.ndarray] = {}
    for stack, scope, modules in (("encoder", "enc", _ENCODER_MODULES),
                                  ("decoder", "dec", _DECODER_MODULES)):
        for layer in range(metadata[f"model.{stack}_layers"]):
            for theirs, ours in modules.items():
                norm = ours.endswith("_norm")
                for param in ("weight", "bias"):
                    our_param = _LAYER_NORM_PARAMS[param] if norm else param
                    tensors[f"{scope}.{layer}.{ours}.{our_param}"] = _take(
                        state, f"model.{stack}.layers.{layer}.{theirs}.{param}", model_dir, used)
    return tensors


def _take(state: dict[str, np.ndarray], name: str, model_dir: Path, used: set[str]) -> np.ndarray:
    """state[name], recorded in `used`; ConversionError when the checkpoint lacks it."""
    if name not in state:
        raise ConversionError(f"{model_dir}: the checkpoint has no tensor '{name}'")
    used.add(name)
    return state[name]


def _strip_prefix(name: str) -> str:
    # MarianModel checkpoints (no lm_head) name tensors without the "model." prefix.
    if name.startswith(("encoder.", "decoder.", "shared.")):
        return "model." + name
    return name


def _embeddings(state: dict[str, np.ndarray], config: dict[str, Any], model_dir: Path,
                used: set[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encoder embeddings, decoder embeddings and output projection, resolving ties the way
    transformers 5 loads them: with tie_word_embeddings, a tied weight absent from the
    checkpoint takes the value of the present member of its group; a present one is used as
    stored. The same array object is returned for tied weights so the writer stores it once."""
    shared = bool(config.get("share_encoder_decoder_embeddings", True))
    tie = bool(config.get("tie_word_embeddings", True))
    names = {"encoder": "model.encoder.embed_tokens.weight",
             "decoder": "model.decoder.embed_tokens.weight",
             "output": "lm_head.weight"}
    if shared:
        names["shared"] = "model.shared.weight"
        groups = [["shared", "encoder", "decoder", "output"]] if tie else []
    else:
        groups = [["decoder", "output"]] if tie else []

    resolved: dict[str, np.ndarray] = {}
    for role, name in names.items():
        if name in state:
            used.add(name)
            resolved[role] = state[name]
    for group in groups:
        present = [role for role in group if role in resolved]
        if not present:
            continue
        # Identical copies (e.g. .bin checkpoints store every tied name) collapse to one array.
        source = resolved[present[0]]
        for role in group:
            if role not in resolved or np.array_equal(resolved[role], source):
                resolved[role] = source
    for role in ("encoder", "decoder", "output"):
        if role not in resolved:
            raise ConversionError(f"{model_dir}: the checkpoint has no '{names[role]}' and "
                                  "config.json does not tie it to a stored weight")
    return resolved["encoder"], resolved["decoder"], resolved["output"]


# ---------------------------------------------------------------------------------------------
# files


def _read_required_json(path: Path) -> Any:
    if not path.exists():
        raise ConversionError(f"{path}: missing")
    return read_json(path)


def _read_optional_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    value = read_json(path)
    if not isinstance(value, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    return value


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ConversionError(f"{path}: missing")
    return path.read_bytes()
