"""Converter of GGUF (llama.cpp) files of the Llama family (Llama, SmolLM, TinyLlama, Qwen2)
into a pytransformer file, with numpy only (the GGUF reader is pytransformer.gguf).

The file is what llama.cpp's convert_hf_to_gguf.py (and llama-quantize) write:
`general.architecture` "llama" or "qwen2", the hyperparameters under `{arch}.*`, the tokenizer
under `tokenizer.ggml.*` (rebuilt by _gguf_tokenizer.py) and the tensors under llama.cpp's names
(`token_embd.weight`, `blk.{i}.attn_q.weight`, ...), any of the types pytransformer.gguf
dequantises.

What changes llama.cpp's outputs is carried into the metadata (docs/format.md, "Decoder-only
language models"), and what the format cannot express is refused with a ConversionError naming
the key or tensor:
- architecture: RMSNorm pre-norm blocks, grouped-query attention, SwiGLU, rotary embeddings of
  `{arch}.rope.dimension_count` leading dimensions per head (default: the whole head) with base
  `{arch}.rope.freq_base` (default 10000). Rotary layout: convert_hf_to_gguf.py permutes the Q
  and K rows of "llama" models from Hugging Face's half-split order into the interleaved pairs
  of Meta's checkpoints, which llama.cpp rotates as pairs (2i, 2i+1): `interleaved`; it stores
  "qwen2" rows unpermuted and rotates them NEOX-style, pairs (i, i + d/2): `half_split`.
  Refused: rope scaling (`{arch}.rope.scaling.type` other than none, or linear with factor 1;
  a `rope_freqs.weight` tensor), mixture of experts (`{arch}.expert_count`), key/value head
  sizes other than embedding_length / head_count, per-layer hyperparameters that differ, and
  every other `{arch}.*` key (the converter does not know what it would change);
- weights: every tensor dequantised to float32, except with `quantize="gguf"`, where every
  Q8_0 or Q4_1 matrix is kept as its blocks, the file's bytes unchanged (a
  pytransformer.format.BlockMatrix, stored as q8_0 / q4_1: docs/format.md); `ffn_gate` and
  `ffn_up` rows concatenated into `ffn_gate_up` (for blocks of one type, their rows of bytes;
  gate and up of different types are dequantised); Q/K/V biases for qwen2 (always) and llama
  (when the file has them, as llama.cpp allows); the output projection is `output.weight`, or
  the embedding itself when the file has none (tied embeddings, stored once);
- tokens: bos/eos/unk/pad from `tokenizer.ggml.*_token_id` (no BOS: the eos id), stop ids the
  end-of-turn tokens (_gguf_tokenizer.py); `tokenizer.add_bos` from
  `tokenizer.ggml.add_bos_token`, else llama.cpp's default for the vocabulary;
- generation defaults: as the Hugging Face converter (greedy, up to 256 new tokens,
  transformers' search conventions).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from pytransformer.convert._common import ConversionError, converter_name
from pytransformer.convert._gguf_tokenizer import gguf_flag, tokenizer_metadata
from pytransformer.convert._llama_layers import layer_tensors
from pytransformer.convert.llama_hf import _generation_metadata

ARCHITECTURES = ("llama", "qwen2")
# convert_gguf's quantize values: write_model's, and "gguf" (the file's Q8_0 / Q4_1 blocks kept).
PRECISIONS = (None, "f16", "bf16", "int8", "int8_all", "q8_0", "q4_1", "gguf")
_KEPT_BLOCK_TYPES = {"Q8_0": "q8_0", "Q4_1": "q4_1"}  # GGUF type -> our dtype
_DEFAULT_ROPE_BASE = 10000.0
_MAX_POSITIONS = 1 << 20

# Per-layer tensors: llama.cpp (under blk.{i}.) -> ours (under dec.{i}.).
# GGUF's names of a layer's tensors by role (_llama_layers.LAYER_ROLES).
_LAYER_NAMES = {
    "attn_norm": "blk.{i}.attn_norm.weight", "q": "blk.{i}.attn_q.weight",
    "k": "blk.{i}.attn_k.weight", "v": "blk.{i}.attn_v.weight",
    "out": "blk.{i}.attn_output.weight", "ffn_norm": "blk.{i}.ffn_norm.weight",
    "gate": "blk.{i}.ffn_gate.weight", "up": "blk.{i}.ffn_up.weight",
    "down": "blk.{i}.ffn_down.weight", "q_bias": "blk.{i}.attn_q.bias",
    "k_bias": "blk.{i}.attn_k.bias", "v_bias": "blk.{i}.attn_v.bias",
    "out_bias": "blk.{i}.attn_output.bias",
}

# `{arch}.` keys read below; any other is refused.
_KNOWN_KEYS = frozenset((
    "context_length", "embedding_length", "block_count", "feed_forward_length",
    "attention.head_count", "attention.head_count_kv", "attention.layer_norm_rms_epsilon",
    "attention.key_length", "attention.value_length", "attention.causal",
    "rope.dimension_count", "rope.freq_base", "rope.scaling.type", "rope.scaling.factor",
    "rope.scale_linear", "rope.scaling.original_context_length", "rope.scaling.finetuned",
    "vocab_size", "expert_count", "expert_used_count",
))


def convert_gguf(gguf_path: str | Path, output_path: str | Path,
                 quantize: str | None = None) -> Path:
    """Converts the llama.cpp GGUF file `gguf_path` (a Llama or Qwen2 model) into the
    pytransformer file `output_path`.

    quantize: None writes float32 (every GGUF tensor dequantised); "gguf" keeps every Q8_0 and
    Q4_1 matrix of the file as it is (q8_0 / q4_1, the same bytes) and stores the other
    matrices, dequantised, as f16 (vectors f32); other values are passed to
    pytransformer.format.write_model with every tensor dequantised ("f16", "bf16", "int8",
    "int8_all", "q8_0" and "q4_1": requantised from float32 as ggml's reference quantiser does).
    Returns the output path. Raises ConversionError (a ValueError) naming the file at fault;
    ValueError for an unknown `quantize`.
    """
    from pytransformer.format import write_model

    if quantize not in PRECISIONS:
        raise ValueError("quantize must be one of "
                         + ", ".join(repr(precision) for precision in PRECISIONS)
                         + f", not {quantize!r}")
    keep_blocks = quantize == "gguf"
    metadata, tensors = load_gguf(gguf_path, keep_blocks=keep_blocks)
    output_path = Path(output_path)
    write_model(output_path, metadata, tensors, quantize="f16" if keep_blocks else quantize)
    return output_path


def load_gguf(gguf_path: str | Path, keep_blocks: bool = False,
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metadata and tensors (our names, float32 arrays) of the GGUF file `gguf_path`.
    keep_blocks: every Q8_0 or Q4_1 matrix is a pytransformer.format.BlockMatrix of the file's
    bytes instead (q8_0 / q4_1), which write_model stores unchanged."""
    from pytransformer.gguf import GgufError, read_gguf

    path = Path(gguf_path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        gguf = read_gguf(path)
    except GgufError as error:
        raise ConversionError(str(error)) from None
    source = str(path)
    architecture = gguf.metadata.get("general.architecture")
    if architecture not in ARCHITECTURES:
        raise ConversionError(f"{source}: general.architecture is {architecture!r}, expected "
                              f"one of {', '.join(repr(a) for a in ARCHITECTURES)}")

    metadata = _model_metadata(gguf.metadata, architecture, gguf.tensors, source)
    metadata.update(tokenizer_metadata(gguf.metadata, metadata["model.target_vocab_size"],
                                       source))
    metadata.update(_generation_metadata(metadata))
    metadata.update(_general_metadata(gguf.metadata, path))
    try:
        tensors = _tensors(gguf.tensors, metadata, architecture, source, keep_blocks)
    except GgufError as error:  # a tensor type the reader cannot dequantise
        raise ConversionError(str(error)) from None
    return metadata, tensors


# ---------------------------------------------------------------------------------------------
# {arch}.* -> model.*


def _model_metadata(gguf: dict[str, Any], arch: str, tensors: dict[str, Any],
                    source: str) -> dict[str, Any]:
    unknown = sorted(key for key in gguf
                     if key.startswith(f"{arch}.") and key[len(arch) + 1:] not in _KNOWN_KEYS)
    if unknown:
        raise ConversionError(f"{source}: {unknown[0]} is not supported (the converter does not "
                              "know what it changes)"
                              + (f"; also {', '.join(unknown[1:8])}" if unknown[1:] else ""))

    def key(name: str) -> str:
        return f"{arch}.{name}"

    hidden = _int(gguf, key("embedding_length"), source)
    layers = _int(gguf, key("block_count"), source)
    heads = _int(gguf, key("attention.head_count"), source)
    kv_heads = _int(gguf, key("attention.head_count_kv"), source, default=heads)
    ffn = _int(gguf, key("feed_forward_length"), source)
    if hidden % heads:
        raise ConversionError(f"{source}: {key('attention.head_count')} {heads} does not divide "
                              f"{key('embedding_length')} {hidden}")
    if heads % kv_heads:
        raise ConversionError(f"{source}: {key('attention.head_count_kv')} {kv_heads} does not "
                              f"divide {key('attention.head_count')} {heads}")
    head_dim = hidden // heads
    for name in ("attention.key_length", "attention.value_length"):
        size = _int(gguf, key(name), source, default=head_dim)
        if size != head_dim:
            raise ConversionError(f"{source}: {key(name)} {size} differs from embedding_length "
                                  f"/ head_count = {head_dim}: not supported (the format "
                                  "derives the head size)")
    for name in ("expert_count", "expert_used_count"):
        if _int(gguf, key(name), source, default=0, minimum=0):
            raise ConversionError(f"{source}: {key(name)} is {gguf[key(name)]}: mixture-of-"
                                  "experts models are not supported")
    if not gguf_flag(gguf, key("attention.causal"), True, source):
        raise ConversionError(f"{source}: {key('attention.causal')} is false: only causal "
                              "attention is supported")

    epsilon = _float(gguf, key("attention.layer_norm_rms_epsilon"), source)
    if not 0 < epsilon <= 1:
        raise ConversionError(f"{source}: {key('attention.layer_norm_rms_epsilon')} must be in "
                              f"(0, 1], got {epsilon!r}")
    context = _int(gguf, key("context_length"), source)
    if context > _MAX_POSITIONS:
        raise ConversionError(f"{source}: {key('context_length')} {context} is above the "
                              f"format's limit of {_MAX_POSITIONS} positions")
    rope_base = _float(gguf, key("rope.freq_base"), source, default=_DEFAULT_ROPE_BASE)
    if not math.isfinite(rope_base) or rope_base <= 1:
        raise ConversionError(f"{source}: {key('rope.freq_base')} must be a finite number above "
                              f"1, got {rope_base!r}")
    rotary_dim = _int(gguf, key("rope.dimension_count"), source, default=head_dim)
    if rotary_dim % 2 or rotary_dim > head_dim:
        raise ConversionError(f"{source}: {key('rope.dimension_count')} {rotary_dim} must be "
                              f"even and at most the head size {head_dim}")
    _check_rope_scaling(gguf, arch, tensors, source)

    tokens = gguf.get("tokenizer.ggml.tokens")
    vocab_size = _int(gguf, key("vocab_size"), source,
                      default=len(tokens) if isinstance(tokens, list) and tokens else None)
    return {
        "model.d_model": hidden,
        "model.decoder_layers": layers,
        "model.decoder_heads": heads,
        "model.kv_heads": kv_heads,
        "model.decoder_ffn_dim": ffn,
        "model.activation": "swish",
        "model.layer_norm_epsilon": epsilon,
        "model.max_positions": context,
        "model.target_vocab_size": vocab_size,
        "model.rope_base": rope_base,
        "model.rotary_dim": rotary_dim,
        "model.rotary_layout": "interleaved" if arch == "llama" else "half_split",
        "model.qkv_bias": arch == "qwen2" or "blk.0.attn_q.bias" in tensors,
    }


def _check_rope_scaling(gguf: dict[str, Any], arch: str, tensors: dict[str, Any],
                        source: str) -> None:
    """Refuses every rope variant but plain rotary embeddings (linear scaling by 1 is plain)."""
    scaling = gguf.get(f"{arch}.rope.scaling.type", "none")
    factor = _float(gguf, f"{arch}.rope.scaling.factor", source, default=1.0)
    scale_linear = _float(gguf, f"{arch}.rope.scale_linear", source, default=1.0)
    if scaling not in ("none", "linear") or (scaling == "linear" and factor != 1):
        raise ConversionError(f"{source}: {arch}.rope.scaling.type is {scaling!r} (factor "
                              f"{factor:g}): rope scaling is not supported")
    if scale_linear != 1:
        raise ConversionError(f"{source}: {arch}.rope.scale_linear is {scale_linear:g}: rope "
                              "scaling is not supported")
    if "rope_freqs.weight" in tensors:
        raise ConversionError(f"{source}: tensor 'rope_freqs.weight' (per-frequency rope "
                              "scaling, Llama 3.1 style) is not supported")


def _general_metadata(gguf: dict[str, Any], path: Path) -> dict[str, Any]:
    source = next((gguf[key] for key in ("general.source.huggingface.repository",
                                         "general.source.url", "general.url")
                   if isinstance(gguf.get(key), str)), None)
    result = {
        "general.architecture": "llama",
        "general.name": gguf["general.name"] if isinstance(gguf.get("general.name"), str)
        else path.stem,
        "general.source": source or str(path.resolve()),
        "general.converter": converter_name("gguf_llama"),
    }
    if isinstance(gguf.get("general.license"), str):
        result["general.license"] = gguf["general.license"]
    # The reader keeps undecodable bytes as surrogates; the writer wants valid strings.
    return {key: value.encode("utf-8", "replace").decode("utf-8")
            if isinstance(value, str) else value for key, value in result.items()}


def _int(gguf: dict[str, Any], key: str, source: str, default: int | None = None,
         minimum: int = 1) -> int:
    value = _scalar(gguf, key, source, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConversionError(f"{source}: {key} must be an integer of at least {minimum}, got "
                              f"{value!r}")
    return value


def _float(gguf: dict[str, Any], key: str, source: str, default: float | None = None) -> float:
    value = _scalar(gguf, key, source, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConversionError(f"{source}: {key} must be a number, got {value!r}")
    return float(value)


def _scalar(gguf: dict[str, Any], key: str, source: str, default: Any) -> Any:
    """The value of `key`; a per-layer array (llama.cpp allows some) only when its values are
    all equal."""
    if key not in gguf:
        if default is None:
            raise ConversionError(f"{source}: {key} is missing")
        return default
    value = gguf[key]
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.size == 0 or np.any(value != value[0]):
            raise ConversionError(f"{source}: {key} has different values per layer: not "
                                  "supported")
        value = value[0].item()
    return value


# ---------------------------------------------------------------------------------------------
# weights


def _tensors(gguf_tensors: dict[str, Any], metadata: dict[str, Any], arch: str,
             source: str, keep_blocks: bool) -> dict[str, Any]:
    from pytransformer.format import BlockMatrix

    used: set[str] = set()
    d = metadata["model.d_model"]
    vocab = metadata["model.target_vocab_size"]

    def take(name: str, shape: tuple[int, ...]) -> np.ndarray | BlockMatrix:
        if name not in gguf_tensors:
            raise ConversionError(f"{source}: the file has no tensor '{name}'")
        tensor = gguf_tensors[name]
        if tuple(tensor.shape) != shape:
            raise ConversionError(f"{source}: tensor '{name}' has shape {list(tensor.shape)} "
                                  f"(numpy order), expected {list(shape)} from the metadata")
        used.add(name)
        if keep_blocks and tensor.type in _KEPT_BLOCK_TYPES and len(shape) == 2:
            try:
                return BlockMatrix(_KEPT_BLOCK_TYPES[tensor.type], shape, tensor.raw_rows())
            except ValueError as error:  # a NaN or infinite d or m
                raise ConversionError(f"{source}: tensor '{name}' ({tensor.type}): "
                                      f"{error}") from None
        value = tensor.dequantize()
        if not np.isfinite(value).all():
            raise ConversionError(f"{source}: tensor '{name}' ({tensor.type}) holds NaN or "
                                  "infinite values")
        return value

    tensors = layer_tensors(metadata, _LAYER_NAMES, take, gguf_tensors.__contains__, source)
    tensors["dec.final_norm.gamma"] = take("output_norm.weight", (d,))
    embed = take("token_embd.weight", (vocab, d))
    tensors["dec.embed.weight"] = embed
    tensors["dec.out_proj.weight"] = (take("output.weight", (vocab, d))
                                      if "output.weight" in gguf_tensors else embed)

    unknown = sorted(set(gguf_tensors) - used)
    if unknown:
        raise ConversionError(f"{source}: unexpected tensors for a {arch} model (an unsupported "
                              f"variant?): {', '.join(unknown[:8])}")
    return tensors
