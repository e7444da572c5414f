"""Converter of llama2.c checkpoints (Karpathy's `.bin` + `tok*.bin`) into a pytransformer file.

The checkpoint is the legacy version-0 layout that llama2.c's run.c reads (export.py
`legacy_export`, and the published stories15M/42M/110M/260K files): seven little-endian int32
(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
means the classifier is not shared with the token embedding), then float32 arrays, matrices
[out, in] row-major:

    token_embedding [V, dim]      rms_att [L, dim]           wq [L, dim, dim]
    wk, wv [L, kv_dim, dim]       wo [L, dim, dim]           rms_ffn [L, dim]
    w1, w3 [L, hidden, dim] (w2 [L, dim, hidden] between)    rms_final [dim]
    freq_cis_real, freq_cis_imag [seq_len, head_size/2] (unused)
    wcls [V, dim] (only when vocab_size < 0)

with head_size = dim / n_heads and kv_dim = n_kv_heads * head_size. The model is run.c's:
RMSNorm (epsilon 1e-5), rotary embeddings with base 10000 on the whole head with pairs
(2i, 2i+1) adjacent (`interleaved`), SwiGLU w2(silu(w1 x) * w3 x).

The tokenizer file is llama2.c's tokenizer.py export: int32 max_token_length, then per token a
float32 score, an int32 length and that many bytes of UTF-8 (spaces where SentencePiece has '▁';
<s> and </s> written as "\\n<s>\\n" and "\\n</s>\\n"). It becomes a SentencePiece BPE model
(_sentencepiece_vocab.py) whose encoding and decoding are run.c's: a dummy space before the
prompt, byte fallback, the first space after BOS dropped when decoding.

Both files are checked completely (header ranges, the exact file size, every token length)
before anything is mapped or allocated; a fault raises ConversionError naming the file.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytransformer.convert._common import ConversionError, converter_name
from pytransformer.convert._sentencepiece_vocab import build_sentencepiece_model

_HEADER = struct.Struct("<7i")
# export.py's version 1 and 2 files start with this magic (b"ak42" as a little-endian uint32).
_VERSIONED_MAGIC = 0x616B3432
_FLOAT_BYTES = 4
# Bounds of docs/format.md (llama), checked on the header so sizes stay reasonable.
_MAX_DIM = 65536
_MAX_LAYERS = 1024
_MAX_FFN = 2**20
_MAX_VOCAB = 2**24
_MAX_POSITIONS = 2**20
# run.c's model: these are not stored in the checkpoint.
_ROPE_BASE = 10000.0
_RMS_NORM_EPSILON = 1e-5
_UNK_ID, _BOS_ID, _EOS_ID = 0, 1, 2
_SPECIAL_PIECES = {_UNK_ID: "<unk>", _BOS_ID: "<s>", _EOS_ID: "</s>"}
_LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md")


@dataclass(frozen=True)
class Llama2cConfig:
    """The checkpoint header, checked."""

    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_size

    def array_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of the float32 arrays after the header, in file order."""
        d, h, n, v, kv = self.dim, self.hidden_dim, self.n_layers, self.vocab_size, self.kv_dim
        shapes = [
            ("token_embedding", (v, d)),
            ("rms_att", (n, d)),
            ("wq", (n, d, d)),
            ("wk", (n, kv, d)),
            ("wv", (n, kv, d)),
            ("wo", (n, d, d)),
            ("rms_ffn", (n, d)),
            ("w1", (n, h, d)),
            ("w2", (n, d, h)),
            ("w3", (n, h, d)),
            ("rms_final", (d,)),
            ("freq_cis_real", (self.seq_len, self.head_size // 2)),
            ("freq_cis_imag", (self.seq_len, self.head_size // 2)),
        ]
        if not self.shared_classifier:
            shapes.append(("wcls", (v, d)))
        return shapes

    def file_size(self) -> int:
        return _HEADER.size + _FLOAT_BYTES * sum(math.prod(s) for _, s in self.array_shapes())


def convert_llama2c(checkpoint: str | Path, output_path: str | Path,
                    quantize: str | None = None, *,
                    tokenizer: str | Path | None = None) -> Path:
    """Converts the llama2.c checkpoint `checkpoint` (with its tokenizer file) into the
    pytransformer file `output_path`.

    tokenizer: the tok*.bin file; None looks beside the checkpoint for `tok<vocab_size>.bin`
    (llama2.c's name for a custom vocabulary), then `tokenizer.bin` (Llama 2's 32000 pieces).
    quantize: None keeps float32 weights; "f16", "bf16", "int8", "int8_all", "q8_0" or "q4_1"
    are passed to pytransformer.format.write_model. Returns the output path. Raises ConversionError
    (a ValueError) naming the file at fault.
    """
    from pytransformer.format import write_model

    metadata, tensors = load_llama2c(checkpoint, tokenizer)
    output_path = Path(output_path)
    write_model(output_path, metadata, tensors, quantize=quantize)
    return output_path


def load_llama2c(checkpoint: str | Path, tokenizer: str | Path | None = None
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and tensors (our names, float32) of a llama2.c checkpoint. The tensors are
    read-only views of the memory-mapped checkpoint, except the concatenated ffn_gate_up."""
    checkpoint = Path(checkpoint)
    config = read_llama2c_header(checkpoint)
    tokenizer_path = _tokenizer_path(checkpoint, config, tokenizer)
    pieces, scores = read_llama2c_tokenizer(tokenizer_path, config.vocab_size)
    tokenizer_model = build_sentencepiece_model(
        pieces, scores, unk_id=_UNK_ID, bos_id=_BOS_ID, eos_id=_EOS_ID, pad_id=-1,
        byte_fallback=True, source=str(tokenizer_path))
    license_name = _license(checkpoint.parent)

    metadata: dict[str, Any] = {
        "general.architecture": "llama",
        "general.name": checkpoint.stem,
        "general.source": str(checkpoint.resolve()),
        "general.converter": converter_name("llama2c"),
        **({"general.license": license_name} if license_name else {}),
        "model.d_model": config.dim,
        "model.decoder_layers": config.n_layers,
        "model.decoder_heads": config.n_heads,
        "model.kv_heads": config.n_kv_heads,
        "model.decoder_ffn_dim": config.hidden_dim,
        "model.activation": "swish",
        "model.layer_norm_epsilon": _RMS_NORM_EPSILON,
        "model.max_positions": config.seq_len,
        "model.target_vocab_size": config.vocab_size,
        "model.rope_base": _ROPE_BASE,
        "model.rotary_dim": config.head_size,
        "model.rotary_layout": "interleaved",
        "model.qkv_bias": False,
        "tokens.bos_id": _BOS_ID,
        "tokens.eos_id": _EOS_ID,
        "tokens.unk_id": _UNK_ID,
        # run.c stops when it samples BOS: the TinyStories models start each story with it.
        "tokens.stop_ids": [_BOS_ID],
        "vocab.target": pieces,
        "tokenizer.type": "sentencepiece",
        "tokenizer.target_model": tokenizer_model,
        "tokenizer.add_bos": True,
        "generation.beam_size": 1,
        # The context holds BOS and the generated tokens.
        "generation.max_length": config.seq_len - 1,
        "generation.length_penalty": 1.0,
        "generation.suppressed_ids": [],
        "generation.forced_eos": False,
        "generation.search_convention": "transformers",
    }
    return metadata, _tensors(_map_arrays(checkpoint, config), config)


# ---------------------------------------------------------------------------------------------
# checkpoint


def read_llama2c_header(path: Path) -> Llama2cConfig:
    """The checked header of the checkpoint `path`; ConversionError unless the file is exactly
    the header and the arrays it describes."""
    actual_size = _file_size(path)
    if actual_size < _HEADER.size:
        raise ConversionError(f"{path}: {actual_size} bytes, shorter than the llama2.c header "
                              f"({_HEADER.size} bytes)")
    try:
        with open(path, "rb") as file:
            header = _HEADER.unpack(file.read(_HEADER.size))
    except (OSError, struct.error) as error:
        raise ConversionError(f"{path}: cannot be read: {error}") from None
    if header[0] == _VERSIONED_MAGIC:
        raise ConversionError(f"{path}: a version-1/2 llama2.c export (magic 'ak42'); only the "
                              "legacy version-0 layout that run.c reads is supported (export.py "
                              "--version 0)")
    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len = header
    fields = {"dim": dim, "hidden_dim": hidden_dim, "n_layers": n_layers, "n_heads": n_heads,
              "n_kv_heads": n_kv_heads, "|vocab_size|": abs(vocab_size), "seq_len": seq_len}
    bounds = {"dim": (2, _MAX_DIM), "hidden_dim": (1, _MAX_FFN), "n_layers": (1, _MAX_LAYERS),
              "n_heads": (1, _MAX_DIM), "n_kv_heads": (1, _MAX_DIM),
              "|vocab_size|": (_EOS_ID + 1, _MAX_VOCAB), "seq_len": (2, _MAX_POSITIONS)}
    for name, value in fields.items():
        low, high = bounds[name]
        if not low <= value <= high:
            raise ConversionError(f"{path}: header {name} is {value}, outside {low}..{high}: "
                                  "not a llama2.c (version 0) checkpoint")
    if dim % n_heads:
        raise ConversionError(f"{path}: header n_heads {n_heads} does not divide dim {dim}")
    if n_heads % n_kv_heads:
        raise ConversionError(f"{path}: header n_kv_heads {n_kv_heads} does not divide n_heads "
                              f"{n_heads}")
    if (dim // n_heads) % 2:
        raise ConversionError(f"{path}: head size {dim // n_heads} (dim {dim} / n_heads "
                              f"{n_heads}) is odd; rotary embeddings rotate pairs")
    config = Llama2cConfig(dim, hidden_dim, n_layers, n_heads, n_kv_heads, abs(vocab_size),
                           seq_len, shared_classifier=vocab_size > 0)
    expected_size = config.file_size()
    if actual_size != expected_size:
        classifier = "shared" if config.shared_classifier else "separate"
        fault = "truncated" if actual_size < expected_size else "trailing bytes"
        raise ConversionError(
            f"{path}: {actual_size} bytes, expected {expected_size} for the header's model "
            f"(dim {dim}, hidden_dim {hidden_dim}, {n_layers} layers, {n_heads} heads, "
            f"{n_kv_heads} kv heads, vocabulary {abs(vocab_size)} with a {classifier} "
            f"classifier, seq_len {seq_len}): {fault}")
    return config


def _map_arrays(path: Path, config: Llama2cConfig) -> dict[str, np.ndarray]:
    """Read-only float32 views of the checkpoint's arrays over one memory mapping."""
    mapping = _map_file(path, config.file_size())
    arrays: dict[str, np.ndarray] = {}
    offset = _HEADER.size
    for name, shape in config.array_shapes():
        count = math.prod(shape)
        arrays[name] = np.frombuffer(mapping, dtype="<f4", count=count,
                                     offset=offset).reshape(shape)
        offset += _FLOAT_BYTES * count
    return arrays


def _tensors(arrays: dict[str, np.ndarray], config: Llama2cConfig) -> dict[str, np.ndarray]:
    embed = arrays["token_embedding"]
    tensors: dict[str, np.ndarray] = {"dec.embed.weight": embed}
    for i in range(config.n_layers):
        scope = f"dec.{i}"
        tensors[f"{scope}.attn_self_norm.gamma"] = arrays["rms_att"][i]
        tensors[f"{scope}.attn_self_q.weight"] = arrays["wq"][i]
        tensors[f"{scope}.attn_self_k.weight"] = arrays["wk"][i]
        tensors[f"{scope}.attn_self_v.weight"] = arrays["wv"][i]
        tensors[f"{scope}.attn_self_out.weight"] = arrays["wo"][i]
        tensors[f"{scope}.ffn_norm.gamma"] = arrays["rms_ffn"][i]
        # Rows 0..hidden-1 the gate (w1), then the linear part (w3).
        tensors[f"{scope}.ffn_gate_up.weight"] = np.concatenate(
            (arrays["w1"][i], arrays["w3"][i]), axis=0)
        tensors[f"{scope}.ffn_down.weight"] = arrays["w2"][i]
    tensors["dec.final_norm.gamma"] = arrays["rms_final"]
    # The same array when shared: the writer stores it once.
    tensors["dec.out_proj.weight"] = embed if config.shared_classifier else arrays["wcls"]
    return tensors


# ---------------------------------------------------------------------------------------------
# tokenizer


def read_llama2c_tokenizer(path: Path, vocab_size: int) -> tuple[list[str], list[float]]:
    """(pieces as SentencePiece spells them, scores) of the tok*.bin file `path`, which must
    hold exactly `vocab_size` tokens (the model's vocabulary)."""
    size = _file_size(path)
    if size < 4:
        raise ConversionError(f"{path}: {size} bytes, too short for a llama2.c tokenizer")
    data = _map_file(path, size)
    (max_token_length,) = struct.unpack_from("<i", data, 0)
    if not 1 <= max_token_length <= size:
        raise ConversionError(f"{path}: max_token_length is {max_token_length}, outside "
                              f"1..{size} (the file size): not a llama2.c tokenizer")
    pieces: list[str] = []
    scores: list[float] = []
    offset = 4
    for index in range(vocab_size):
        if offset + 8 > size:
            raise ConversionError(f"{path}: ends at token {index} of the model's {vocab_size} "
                                  f"(byte {offset} of {size}): truncated, or the tokenizer of "
                                  "another model")
        score, length = struct.unpack_from("<fi", data, offset)
        offset += 8
        if not 1 <= length <= max_token_length:
            raise ConversionError(f"{path}: token {index} has length {length}, outside "
                                  f"1..{max_token_length} (max_token_length)")
        if offset + length > size:
            raise ConversionError(f"{path}: token {index} ({length} bytes at byte {offset}) "
                                  f"extends past the end of the file ({size} bytes)")
        if not math.isfinite(score):
            raise ConversionError(f"{path}: token {index} has score {score}")
        raw = data[offset:offset + length]
        offset += length
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConversionError(f"{path}: token {index} ({raw!r}) is not valid UTF-8"
                                  ) from None
        pieces.append(_sentencepiece_piece(index, text, path))
        scores.append(score)
    if offset != size:
        raise ConversionError(f"{path}: {size - offset} bytes after the model's {vocab_size} "
                              "tokens: the tokenizer of a larger vocabulary?")
    return pieces, scores


def _sentencepiece_piece(index: int, text: str, path: Path) -> str:
    """The piece as SentencePiece spells it: tokenizer.py wrote '▁' as ' ', and <s>, </s>
    between newlines."""
    if index in _SPECIAL_PIECES:
        if text.strip("\n") != _SPECIAL_PIECES[index]:
            raise ConversionError(f"{path}: token {index} is {text!r}; llama2.c tokenizers have "
                                  f"{_SPECIAL_PIECES[index]!r} there")
        return _SPECIAL_PIECES[index]
    return text.replace(" ", "\u2581")


def _tokenizer_path(checkpoint: Path, config: Llama2cConfig, tokenizer: str | Path | None
                    ) -> Path:
    if tokenizer is not None:
        return Path(tokenizer)
    candidates = [checkpoint.parent / f"tok{config.vocab_size}.bin",
                  checkpoint.parent / "tokenizer.bin"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConversionError(f"{checkpoint}: no tokenizer given, and neither "
                          f"{candidates[0].name} nor {candidates[1].name} beside it")


# ---------------------------------------------------------------------------------------------
# files


def _file_size(path: Path) -> int:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except OSError as error:
        raise ConversionError(f"{path}: cannot be read: {error.strerror}") from None
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: not a file")
    return status.st_size


def _map_file(path: Path, size: int) -> mmap.mmap:
    """A read-only mapping of the whole file `path`, which must (still) be `size` bytes."""
    try:
        with open(path, "rb") as file:
            mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as error:
        raise ConversionError(f"{path}: cannot be read: {error}") from None
    if len(mapping) != size:
        raise ConversionError(f"{path}: the file changed size while it was being read")
    return mapping


def _license(directory: Path) -> str | None:
    """The SPDX name of the licence file beside the checkpoint, when it is one we recognise
    (llama2.c and its TinyStories models are MIT)."""
    for name in _LICENSE_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:2000]
        except OSError:
            return None
        first_line = next((line.strip() for line in head.splitlines() if line.strip()), "")
        if first_line == "MIT License":
            return "MIT"
        if first_line.startswith("Apache License") and "Version 2.0" in head:
            return "Apache-2.0"
        return None
    return None
