"""Marian model files written by the tests (no Marian binary is available here): writers of
Marian's `.npz` and `.bin` formats and of binary lexical shortlists, a `special:model.yml` in
the form Marian dumps it, a Marian-convention SentencePiece model (`</s>` 0, `<unk>` 1, no
`<s>`), and the mapping of a Hugging Face MarianMTModel's weights to Marian's names and layouts
(the inverse of transformers' convert_marian_to_pytorch.py).

Layouts (Marian's src/common/binary.cpp, io.cpp; browsermt's expression_graph_packable.h):
matrices are [in, out] (`y = x W + b`), biases and LayerNorm parameters [1, n], the embeddings
[V, d]; Hugging Face's Linear weights are [out, in] and its vocabulary has one more entry,
`<pad>`, last, with a zero embedding: Marian's zero start vector.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any, Mapping

import numpy as np

EOS = 0
UNK = 1
_TYPE_CODES = {"float32": 0x0404, "float16": 0x0402, "int8": 0x0101, "intgemm8": 0x4101}

# What Marian dumps for a transformer (the options a model.yml of Marian 1.9 to 1.12 holds).
BASE_OPTIONS: dict[str, Any] = {
    "bert-train-type-embeddings": True,
    "bert-type-vocab-size": 2,
    "dec-cell": "gru",
    "dec-cell-base-depth": 2,
    "dec-cell-high-depth": 1,
    "dec-depth": 2,
    "dim-emb": 32,
    "dim-rnn": 1024,
    "dim-vocabs": [0, 0],
    "enc-cell": "gru",
    "enc-cell-depth": 1,
    "enc-depth": 2,
    "enc-type": "bidirectional",
    "input-types": [],
    "layer-normalization": False,
    "lemma-dim-emb": 0,
    "output-omit-bias": False,
    "right-left": False,
    "skip": False,
    "tied-embeddings": False,
    "tied-embeddings-all": True,
    "tied-embeddings-src": False,
    "transformer-aan-activation": "swish",
    "transformer-aan-depth": 2,
    "transformer-aan-nogate": False,
    "transformer-decoder-autoreg": "self-attention",
    "transformer-dim-aan": 2048,
    "transformer-dim-ffn": 64,
    "transformer-ffn-activation": "swish",
    "transformer-ffn-depth": 2,
    "transformer-guided-alignment-layer": "last",
    "transformer-heads": 4,
    "transformer-no-projection": False,
    "transformer-pool": False,
    "transformer-postprocess": "dan",
    "transformer-postprocess-emb": "d",
    "transformer-postprocess-top": "",
    "transformer-preprocess": "",
    "transformer-tied-layers": [],
    "transformer-train-position-embeddings": False,
    "type": "transformer",
    "ulr": False,
    "ulr-dim-emb": 0,
    "ulr-trainable-transformation": False,
    "version": "v1.12.0 65bf82ff 2023-02-21 09:56:29 -0800",
}


def model_yml(options: Mapping[str, Any]) -> str:
    """A model.yml in yaml-cpp's style (what Marian writes into special:model.yml)."""
    lines = []
    for key in sorted(options):
        value = options[key]
        if isinstance(value, bool):
            lines.append(f"{key}: {'true' if value else 'false'}")
        elif isinstance(value, list):
            if not value:
                lines.append(f"{key}: []")
            else:
                lines.append(f"{key}:")
                lines.extend(f"  - {item}" for item in value)
        elif value == "":
            lines.append(f'{key}: ""')
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def config_item(text: str) -> np.ndarray:
    """special:model.yml as Marian stores it: the text and a NUL, as int8."""
    return np.frombuffer(text.encode("utf-8") + b"\0", dtype=np.int8).copy()


def write_npz(path: Path, items: Mapping[str, np.ndarray], yml: str) -> Path:
    """A Marian .npz (what cnpy writes: an uncompressed zip of .npy arrays)."""
    arrays = {name: np.asarray(value, np.float32) for name, value in items.items()}
    arrays["special:model.yml"] = config_item(yml)
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    return path


def quantize_intgemm8(matrix: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """marian-conv --gemm-type intgemm8: one multiplier 127 / max|W|, integers rounded to
    nearest even (intgemm's cvtps) and clipped to -127..127."""
    matrix = np.asarray(matrix, np.float32)
    quant_mult = np.float32(127.0) / np.float32(np.abs(matrix).max())
    integers = np.clip(np.rint(matrix * quant_mult), -127, 127).astype(np.int8)
    return integers, quant_mult


def write_bin(path: Path, items: Mapping[str, np.ndarray], yml: str, *,
              intgemm8: frozenset[str] | set[str] = frozenset(), pad_to_256: bool = True) -> Path:
    """A Marian binary model (binary.cpp's saveItems): items in the given order, then
    special:model.yml. Items named in `intgemm8` are quantised and stored as
    marian-conv stores them (transposed unless the name holds 'Wemb', multiplier last).
    `pad_to_256` pads every float item's data to a multiple of 256 bytes, as Marian's
    allocator does for most items."""
    entries: list[tuple[str, int, tuple[int, ...], bytes]] = []
    for name, value in items.items():
        value = np.asarray(value)
        if name in intgemm8:
            integers, quant_mult = quantize_intgemm8(value)
            rows = int(np.prod(value.shape[:-1]))
            stored = integers if "Wemb" in name else integers.reshape(rows, -1).T
            data = np.ascontiguousarray(stored).tobytes() + struct.pack("<f", quant_mult)
            code = _TYPE_CODES["intgemm8"]
        else:
            data = np.ascontiguousarray(value, np.float32).tobytes()
            code = _TYPE_CODES["float32"]
        if pad_to_256 and len(data) % 256:
            data += b"\0" * (256 - len(data) % 256)
        entries.append((name, code, tuple(int(d) for d in value.shape), data))
    text = yml.encode("utf-8") + b"\0"
    entries.append(("special:model.yml", _TYPE_CODES["int8"], (len(text),), text))

    out = io.BytesIO()
    out.write(struct.pack("<QQ", 1, len(entries)))
    for name, code, shape, data in entries:
        out.write(struct.pack("<4Q", len(name.encode()) + 1, code, len(shape), len(data)))
    for name, *_ in entries:
        out.write(name.encode() + b"\0")
    for _, _, shape, _ in entries:
        out.write(struct.pack(f"<{len(shape)}i", *shape))
    position = out.tell()
    next_position = ((position + 8) // 256 + 1) * 256
    padding = next_position - position - 8
    out.write(struct.pack("<Q", padding) + b"\0" * padding)
    for *_, data in entries:
        out.write(data)
    path.write_bytes(out.getvalue())
    return path


def marian_hash(words: np.ndarray) -> int:
    """Marian's util::hashMem<uint64_t, uint64_t> (boost's hash_combine over the words)."""
    seed = 0
    mask = (1 << 64) - 1
    for value in words.tolist():
        seed ^= (value + 0x9E3779B9 + ((seed << 6) & mask) + (seed >> 2)) & mask
    return seed


def write_shortlist(path: Path, lists: list[list[int]], first: int = 50,
                    best: int = 50) -> Path:
    """A binary lexical shortlist (shortlist.cpp's import + saveBlobToFile): for each source id
    its target ids, sorted."""
    offsets = np.zeros(len(lists) + 1, np.uint64)
    for index, targets in enumerate(lists):
        offsets[index + 1] = offsets[index] + len(targets)
    targets = np.array([t for targets in lists for t in sorted(targets)], np.uint32)
    body = struct.pack("<4Q", first, best, len(offsets), len(targets)) + offsets.tobytes() \
        + targets.tobytes()
    words = np.frombuffer(body[:len(body) // 8 * 8], np.uint64)
    path.write_bytes(struct.pack("<QQ", 0xF11A48D5013417F5, marian_hash(words)) + body)
    return path


def train_sentencepiece(vocab_size: int = 60, seed: int = 0) -> bytes:
    """A small SentencePiece model in Marian's convention (spm_train --bos_id=-1 --eos_id=0
    --unk_id=1, as Marian trains its own)."""
    import sentencepiece

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=rng.integers(2, 7))) for _ in range(200)]
    lines = [" ".join(rng.choice(words, size=10)) for _ in range(300)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
        bos_id=-1, eos_id=EOS, unk_id=UNK, normalization_rule_name="identity")
    return model.getvalue()


def spm_pieces(blob: bytes) -> list[str]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=blob)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


# ---- Hugging Face MarianMTModel -> Marian items ----------------------------------------------

_ATTENTION = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "out_proj": "o"}


def hf_to_marian(state: Mapping[str, np.ndarray], encoder_layers: int, decoder_layers: int,
                 vocab: int, tied_output: bool) -> dict[str, np.ndarray]:
    """Marian's items for a MarianMTModel state dict (numpy, float32) whose last vocabulary
    entry is its zero `<pad>`: `vocab` is Marian's size (without it)."""
    items: dict[str, np.ndarray] = {}

    def linear(theirs: str, ours: str, bias: str) -> None:
        items[ours] = state[f"{theirs}.weight"].T.copy()
        items[bias] = state[f"{theirs}.bias"].reshape(1, -1).copy()

    def norm(theirs: str, ours: str) -> None:
        items[f"{ours}_ln_scale"] = state[f"{theirs}.weight"].reshape(1, -1).copy()
        items[f"{ours}_ln_bias"] = state[f"{theirs}.bias"].reshape(1, -1).copy()

    for stack, layers in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        for index in range(layers):
            hf = f"model.{stack}.layers.{index}"
            marian = f"{stack}_l{index + 1}"
            blocks = [("self_attn", "self", "self_attn_layer_norm")]
            if stack == "decoder":
                blocks.append(("encoder_attn", "context", "encoder_attn_layer_norm"))
            for theirs, ours, layer_norm in blocks:
                for projection, letter in _ATTENTION.items():
                    linear(f"{hf}.{theirs}.{projection}", f"{marian}_{ours}_W{letter}",
                           f"{marian}_{ours}_b{letter}")
                norm(f"{hf}.{layer_norm}", f"{marian}_{ours}_Wo")
            linear(f"{hf}.fc1", f"{marian}_ffn_W1", f"{marian}_ffn_b1")
            linear(f"{hf}.fc2", f"{marian}_ffn_W2", f"{marian}_ffn_b2")
            norm(f"{hf}.final_layer_norm", f"{marian}_ffn_ffn")
    for stack in ("encoder", "decoder"):  # Marian's tied-embeddings-src: one table
        np.testing.assert_array_equal(state[f"model.{stack}.embed_tokens.weight"],
                                      state["model.shared.weight"])
    items["Wemb"] = state["model.shared.weight"][:vocab].copy()
    if not tied_output:
        items["decoder_ff_logit_out_W"] = state["lm_head.weight"][:vocab].T.copy()
    items["decoder_ff_logit_out_b"] = state["final_logits_bias"][:, :vocab].copy()
    return items
