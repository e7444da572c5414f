"""Tiny random model files for tests (no torch needed).

    from tiny_models import tiny_metadata, write_random_model
    metadata = write_random_model(tmp_path / "m.ptm", seed=1, pre_norm=True, activation="gelu")
    metadata, weights = pytransformer.format.read_model(tmp_path / "m.ptm")

Overrides use short names: every `model.*`, `tokens.*` and `generation.*` key by its last part
(`d_model`, `pre_norm`, `eos_id`, `beam_size`, ...), plus `tokenizer_type`, `add_source_eos`,
`target_languages`, `name` (general.name), and the conveniences `layers`, `heads`, `ffn_dim`
(both stacks) and `separate_vocabs` (different source and target pieces). Vocabulary arrays
follow `source_vocab_size` / `target_vocab_size`. `extra={"full.key": value}` sets any key
verbatim (a value of None deletes the key), e.g. to build invalid metadata for tests.

Vocabularies: id 0 "<pad>", 1 "</s>", 2 "<unk>", then pieces "▁w3", "▁w4", ... (target pieces
are "▁t3", ... with separate_vocabs). Special ids: pad 0, eos 1, unk 2, decoder start 0 (Marian's
convention), source eos 1.

file_layout() describes where each field of a file lies, for corruption and fuzz tests.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytransformer.format import expected_tensors, write_model

SPECIAL_PIECES = ["<pad>", "</s>", "<unk>"]

_BASE = {
    "general.architecture": "transformer-seq2seq",
    "general.name": "tiny-random",
    "model.d_model": 16,
    "model.encoder_layers": 2,
    "model.decoder_layers": 2,
    "model.encoder_heads": 4,
    "model.decoder_heads": 4,
    "model.encoder_ffn_dim": 32,
    "model.decoder_ffn_dim": 32,
    "model.activation": "relu",
    "model.pre_norm": False,
    "model.layer_norm_epsilon": 1e-5,
    "model.scale_embedding": True,
    "model.embedding_norm": False,
    "model.position_layout": "halves",
    "model.position_frequencies": "paper",
    "model.position_offset": 0,
    "model.max_positions": 64,
    "model.source_vocab_size": 30,
    "model.target_vocab_size": 30,
    "model.linear_bias": True,
    "model.output_bias": False,
    "tokens.pad_id": 0,
    "tokens.eos_id": 1,
    "tokens.unk_id": 2,
    "tokens.decoder_start_id": 0,
    "tokens.source_eos_id": 1,
    "tokenizer.type": "none",
    "tokenizer.add_source_eos": True,
    "generation.beam_size": 4,
    "generation.max_length": 20,
    "generation.length_penalty": 1.0,
    "generation.suppressed_ids": [0],
    "generation.forced_eos": True,
    "generation.search_convention": "transformers",
}

_SHORT_NAMES = {
    key.split(".", 1)[1]: key
    for key in _BASE
    if key.split(".", 1)[0] in ("model", "tokens", "generation")
}
_SHORT_NAMES.update(
    name="general.name",
    tokenizer_type="tokenizer.type",
    add_source_eos="tokenizer.add_source_eos",
    target_languages="tokenizer.target_languages",
)
_BOTH_STACKS = {"layers": "_layers", "heads": "_heads", "ffn_dim": "_ffn_dim"}


def vocabulary(size: int, prefix: str = "w") -> list[str]:
    """`size` pieces: the three specials, then "▁{prefix}3", "▁{prefix}4", ..."""
    return (SPECIAL_PIECES + [f"\u2581{prefix}{i}" for i in range(3, size)])[:size]


def tiny_metadata(*, separate_vocabs: bool = False, extra: dict[str, Any] | None = None,
                  **overrides: Any) -> dict[str, Any]:
    """Valid metadata of a tiny model, with the given overrides (see the module docstring)."""
    metadata = dict(_BASE)
    for short, value in overrides.items():
        if short in _BOTH_STACKS:
            metadata["model.encoder" + _BOTH_STACKS[short]] = value
            metadata["model.decoder" + _BOTH_STACKS[short]] = value
        elif short in _SHORT_NAMES:
            metadata[_SHORT_NAMES[short]] = value
        else:
            raise TypeError(f"tiny_metadata: unknown override {short!r}")
    metadata["vocab.source"] = vocabulary(metadata["model.source_vocab_size"])
    metadata["vocab.target"] = vocabulary(metadata["model.target_vocab_size"],
                                          "t" if separate_vocabs else "w")
    for key, value in (extra or {}).items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    return metadata


def random_tensors(metadata: dict[str, Any], seed: int = 0, tied: bool = True
                   ) -> dict[str, np.ndarray]:
    """Random float32 weights of every expected tensor (LayerNorm gammas near 1).

    tied: dec.out_proj.weight is the same array as dec.embed.weight (as in Marian).
    """
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, shape, quantizable in expected_tensors(metadata):
        if tied and name == "dec.out_proj.weight":
            tensors[name] = tensors["dec.embed.weight"]
        elif quantizable:
            tensors[name] = (rng.standard_normal(shape) / np.sqrt(shape[1])).astype(np.float32)
        elif name.endswith(".gamma"):
            tensors[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            tensors[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    return tensors


def write_random_model(path: str | os.PathLike[str], seed: int = 0, quantize: str | None = None,
                       tied: bool = True, **overrides: Any) -> dict[str, Any]:
    """Writes a tiny random model (tiny_metadata(**overrides)) and returns its metadata.

    The weights as the model sees them: pytransformer.format.read_model(path)[1].
    """
    metadata = tiny_metadata(**overrides)
    write_model(path, metadata, random_tensors(metadata, seed, tied), quantize=quantize)
    return metadata


# --- byte layout, for corruption tests -----------------------------------------------------


@dataclass
class MetadataField:
    key: str
    start: int  # offset of the u32 key length
    type_offset: int  # offset of the u8 value type
    value_offset: int  # offset of the value (of the u64 length/count for variable-size types)
    end: int


@dataclass
class TensorField:
    name: str
    start: int  # offset of the u32 name length
    dtype_offset: int
    rank_offset: int
    dims_offset: int  # first u64 dimension
    offset_offset: int  # u64 data offset
    size_offset: int  # u64 byte size
    end: int
    data_offset: int  # relative to the data section
    size: int


@dataclass
class FileLayout:
    size: int
    data_offset: int
    metadata: list[MetadataField] = field(default_factory=list)
    tensors: list[TensorField] = field(default_factory=list)

    def key(self, key: str) -> MetadataField:
        return next(entry for entry in self.metadata if entry.key == key)

    def tensor(self, name: str) -> TensorField:
        return next(entry for entry in self.tensors if entry.name == name)


def file_layout(data: bytes) -> FileLayout:
    """Field offsets of a valid file's bytes (trusts its input: for files the writer made)."""
    metadata_count, tensor_count, data_offset = struct.unpack_from("<QQQ", data, 16)
    layout = FileLayout(size=len(data), data_offset=data_offset)
    pos = 64
    for _ in range(metadata_count):
        start = pos
        (length,) = struct.unpack_from("<I", data, pos)
        key = data[pos + 4:pos + 4 + length].decode()
        type_offset = pos + 4 + length
        value_type = data[type_offset]
        pos = value_offset = type_offset + 1
        if value_type == 1:
            pos += 1
        elif value_type in (2, 3):
            pos += 8
        elif value_type in (4, 5):
            pos += 8 + struct.unpack_from("<Q", data, pos)[0]
        elif value_type in (6, 8):
            pos += 8 + 8 * struct.unpack_from("<Q", data, pos)[0]
        else:
            (count,) = struct.unpack_from("<Q", data, pos)
            pos += 8
            for _ in range(count):
                pos += 8 + struct.unpack_from("<Q", data, pos)[0]
        layout.metadata.append(MetadataField(key, start, type_offset, value_offset, pos))
    for _ in range(tensor_count):
        start = pos
        (length,) = struct.unpack_from("<I", data, pos)
        name = data[pos + 4:pos + 4 + length].decode()
        dtype_offset = pos + 4 + length
        rank = data[dtype_offset + 1]
        dims_offset = dtype_offset + 2
        offset_offset = dims_offset + 8 * rank
        tensor_offset, size = struct.unpack_from("<QQ", data, offset_offset)
        pos = offset_offset + 16
        layout.tensors.append(TensorField(name, start, dtype_offset, dtype_offset + 1, dims_offset,
                                          offset_offset, offset_offset + 8, pos, tensor_offset,
                                          size))
    return layout
