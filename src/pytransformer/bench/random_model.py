"""Random-weight Marian (OPUS-MT-shaped) models for benchmarking when no real model is at hand.

A model is written as a Hugging Face Marian directory (config.json, generation_config.json,
model.safetensors, vocab.json, source.spm/target.spm, tokenizer_config.json), the layout
`MarianMTModel.save_pretrained` + `MarianTokenizer.save_pretrained` produce, so the SAME weights
load in transformers (`MarianMTModel.from_pretrained`), in CTranslate2 (its Transformers
converter) and in pytransformer (`pytransformer.convert.convert_marian`).

Only numpy and sentencepiece are needed. The SentencePiece models are small ones trained on
synthetic words: token-level benchmarks never tokenize, but the tokenizer must load for the
converters. vocab.json follows Marian's layout: `</s>` 0, `<unk>` 1, the SentencePiece pieces,
filler pieces up to the vocabulary size, `<pad>` last (the decoder start token).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: the CLI loads this module for
    import numpy as np  # every command, and numpy alone costs ~0.15 s of start-up (issue 17)


EOS_ID = 0
UNK_ID = 1
# Format revision of the directories written here: part of the cache key, bumped when the
# layout or the weight distribution changes.
_REVISION = 1
_WEIGHT_STD = 0.02  # transformers' MarianConfig.init_std


@dataclass(frozen=True)
class MarianShape:
    """Architecture of a Marian model (the hyper-parameters that set its cost)."""

    d_model: int = 512
    encoder_layers: int = 6
    decoder_layers: int = 6
    heads: int = 8
    ffn_dim: int = 2048
    vocab_size: int = 58101
    max_positions: int = 512
    activation: str = "swish"

    def __post_init__(self) -> None:
        if self.d_model % self.heads or self.d_model % 2:
            raise ValueError(f"d_model {self.d_model} must be even and divisible by heads "
                             f"{self.heads}")
        if self.vocab_size < 8:
            raise ValueError(f"vocab_size {self.vocab_size} is too small (at least 8)")
        for name in ("encoder_layers", "decoder_layers", "heads", "ffn_dim", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")

    @property
    def pad_id(self) -> int:
        return self.vocab_size - 1

    def parameter_count(self) -> int:
        d, f = self.d_model, self.ffn_dim
        attention = 4 * (d * d + d)
        ffn = d * f + f + f * d + d
        norms = 2 * d
        encoder = self.encoder_layers * (attention + ffn + 2 * norms)
        decoder = self.decoder_layers * (2 * attention + ffn + 3 * norms)
        return self.vocab_size * d + encoder + decoder  # tied embeddings and output projection


# The shape of the Helsinki-NLP/opus-mt-* models (e.g. opus-mt-en-de).
OPUS_MT_SHAPE = MarianShape()
# A model small enough for tests (built in well under a second).
TINY_SHAPE = MarianShape(d_model=32, encoder_layers=2, decoder_layers=2, heads=4, ffn_dim=64,
                         vocab_size=120, max_positions=128)
SHAPES = {"opus-mt": OPUS_MT_SHAPE, "tiny": TINY_SHAPE}


def default_cache_dir() -> Path:
    """Where generated and converted benchmark models are kept: $PYTRANSFORMER_CACHE, else
    $XDG_CACHE_HOME/pytransformer, else ~/.cache/pytransformer; then bench/."""
    root = os.environ.get("PYTRANSFORMER_CACHE")
    if root:
        return Path(root) / "bench"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "pytransformer" / "bench"


def random_model_name(shape: MarianShape, seed: int) -> str:
    if shape == OPUS_MT_SHAPE:
        label = "opus-mt-shaped"
    else:
        label = (f"marian-d{shape.d_model}-l{shape.encoder_layers}x{shape.decoder_layers}"
                 f"-h{shape.heads}-f{shape.ffn_dim}-v{shape.vocab_size}-{shape.activation}")
    return f"random-{label}-seed{seed}-r{_REVISION}"


def cached_random_marian(shape: MarianShape = OPUS_MT_SHAPE, seed: int = 0,
                         cache_dir: str | Path | None = None) -> Path:
    """The directory of the random model of `shape` and `seed`, written on first use under
    `cache_dir` (default_cache_dir() if None) and reused afterwards."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    directory = root / random_model_name(shape, seed)
    if not (directory / "model.safetensors").exists():
        write_random_marian(directory, shape, seed)
    return directory


def write_random_marian(directory: str | Path, shape: MarianShape = OPUS_MT_SHAPE,
                        seed: int = 0) -> Path:
    """Writes a Marian model of `shape` with random weights (normal, std 0.02, as transformers
    initialises Marian; LayerNorms at 1/0) into `directory`, atomically: the directory appears
    complete or not at all. Returns the directory."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        spm = _train_sentencepiece(min(shape.vocab_size - 3, 64), seed)
        (staging / "source.spm").write_bytes(spm)
        (staging / "target.spm").write_bytes(spm)
        vocab = _marian_vocab(spm, shape.vocab_size)
        _write_json(staging / "vocab.json", vocab)
        _write_json(staging / "tokenizer_config.json", {
            "tokenizer_class": "MarianTokenizer", "source_lang": "src", "target_lang": "tgt",
            "separate_vocabs": False, "model_max_length": shape.max_positions,
            "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        })
        _write_json(staging / "config.json", _config(shape))
        _write_json(staging / "generation_config.json", {
            "bad_words_ids": [[shape.pad_id]], "decoder_start_token_id": shape.pad_id,
            "eos_token_id": EOS_ID, "pad_token_id": shape.pad_id, "max_length": shape.max_positions,
            "num_beams": 4,
        })
        _write_safetensors(staging / "model.safetensors", _random_weights(shape, seed))
        _write_json(staging / "bench_model.json",
                    {"shape": asdict(shape), "seed": seed, "revision": _REVISION})
        staging.chmod(0o755)  # mkdtemp makes it private
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _config(shape: MarianShape) -> dict:
    return {
        "architectures": ["MarianMTModel"],
        "model_type": "marian",
        "activation_function": shape.activation,
        "d_model": shape.d_model,
        "encoder_layers": shape.encoder_layers,
        "decoder_layers": shape.decoder_layers,
        "encoder_attention_heads": shape.heads,
        "decoder_attention_heads": shape.heads,
        "encoder_ffn_dim": shape.ffn_dim,
        "decoder_ffn_dim": shape.ffn_dim,
        "vocab_size": shape.vocab_size,
        "decoder_vocab_size": shape.vocab_size,
        "max_position_embeddings": shape.max_positions,
        "scale_embedding": True,
        "share_encoder_decoder_embeddings": True,
        "tie_word_embeddings": True,
        "pad_token_id": shape.pad_id,
        "decoder_start_token_id": shape.pad_id,
        "eos_token_id": EOS_ID,
        "bos_token_id": None,
        "dropout": 0.1,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "init_std": _WEIGHT_STD,
        "is_encoder_decoder": True,
        "use_cache": True,
    }


def _random_weights(shape: MarianShape, seed: int) -> dict[str, np.ndarray]:
    """Marian's checkpoint tensors (tied embeddings stored once as model.shared.weight)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    d, f = shape.d_model, shape.ffn_dim

    def normal(*dims: int) -> np.ndarray:
        values = rng.standard_normal(dims, dtype=np.float32)
        values *= _WEIGHT_STD
        return values

    def zeros(*dims: int) -> np.ndarray:
        return np.zeros(dims, dtype=np.float32)

    def layer_norm(prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.weight": np.ones(d, dtype=np.float32), f"{prefix}.bias": zeros(d)}

    def linear(prefix: str, out_features: int, in_features: int) -> dict[str, np.ndarray]:
        return {f"{prefix}.weight": normal(out_features, in_features),
                f"{prefix}.bias": zeros(out_features)}

    embedding = normal(shape.vocab_size, d)
    embedding[shape.pad_id] = 0.0  # nn.Embedding's padding_idx row
    tensors = {"model.shared.weight": embedding, "final_logits_bias": zeros(1, shape.vocab_size)}
    for stack, layers in (("encoder", shape.encoder_layers), ("decoder", shape.decoder_layers)):
        for i in range(layers):
            scope = f"model.{stack}.layers.{i}"
            attentions = ["self_attn"] + (["encoder_attn"] if stack == "decoder" else [])
            for attention in attentions:
                for projection in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    tensors.update(linear(f"{scope}.{attention}.{projection}", d, d))
                tensors.update(layer_norm(f"{scope}.{attention}_layer_norm"))
            tensors.update(linear(f"{scope}.fc1", f, d))
            tensors.update(linear(f"{scope}.fc2", d, f))
            tensors.update(layer_norm(f"{scope}.final_layer_norm"))
    return tensors


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """A float32 safetensors file: u64 header length, JSON header, then the data in order."""
    import numpy as np

    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, value in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(value.shape),
                        "data_offsets": [offset, offset + value.nbytes]}
        offset += value.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        for value in tensors.values():
            file.write(np.ascontiguousarray(value, dtype="<f4").tobytes())


def _train_sentencepiece(vocab_size: int, seed: int) -> bytes:
    import numpy as np

    import sentencepiece

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=rng.integers(2, 8))) for _ in range(300)]
    lines = [" ".join(rng.choice(words, size=12)) for _ in range(400)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
        normalization_rule_name="identity")
    return model.getvalue()


def _marian_vocab(spm: bytes, vocab_size: int) -> dict[str, int]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=spm)
    vocab = {"</s>": EOS_ID, "<unk>": UNK_ID}
    for i in range(processor.get_piece_size()):
        if processor.is_control(i) or processor.is_unknown(i):
            continue
        if len(vocab) < vocab_size - 1:
            vocab.setdefault(processor.id_to_piece(i), len(vocab))
    filler = 0
    while len(vocab) < vocab_size - 1:
        vocab.setdefault(f"▁tok{filler}", len(vocab))
        filler += 1
    vocab["<pad>"] = vocab_size - 1
    return vocab


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
