"""Tied embeddings in convert_marian: stored once even when the checkpoint repeats them.

Marian ties the output projection to the decoder embeddings (tie_word_embeddings) and, with
share_encoder_decoder_embeddings, both embeddings to model.shared. Checkpoints written by
torch.save store every tied name as its own tensor; the converter must still write one array,
so that the file is the size of the untied parameters (as CTranslate2's is).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from pytransformer import _core
from pytransformer.bench.random_model import TINY_SHAPE, write_random_marian
from pytransformer.convert import convert_marian

TIED = ["enc.embed.weight", "dec.embed.weight", "dec.out_proj.weight"]


def _marian_dir(tmp_path: Path, name: str) -> Path:
    return write_random_marian(tmp_path / name, TINY_SHAPE, seed=1)


def _rewrite_weights(directory: Path, change) -> None:
    path = directory / "model.safetensors"
    weights = load_file(str(path))
    change(weights)
    save_file(weights, str(path))


def _offsets(path: Path) -> list[int]:
    model_file = _core.ModelFile(str(path))
    return [model_file.tensor_offset(name) for name in TIED]


def test_repeated_tied_weights_are_stored_once(tmp_path: Path) -> None:
    single = _marian_dir(tmp_path, "single")
    repeated = _marian_dir(tmp_path, "repeated")

    def add_copies(weights: dict[str, np.ndarray]) -> None:
        shared = weights["model.shared.weight"]
        for name in ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
                     "lm_head.weight"):
            weights[name] = shared.copy()

    _rewrite_weights(repeated, add_copies)
    single_file = convert_marian(single, tmp_path / "single.ptm")
    repeated_file = convert_marian(repeated, tmp_path / "repeated.ptm")

    assert len(set(_offsets(single_file))) == 1
    assert len(set(_offsets(repeated_file))) == 1
    assert repeated_file.stat().st_size == single_file.stat().st_size


def test_untied_output_projection_is_stored_separately(tmp_path: Path) -> None:
    directory = _marian_dir(tmp_path, "untied")
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config["tie_word_embeddings"] = False
    config_path.write_text(json.dumps(config))

    # transformers 5 ties nothing then, not even the embeddings to model.shared.
    def add_untied(weights: dict[str, np.ndarray]) -> None:
        shared = weights.pop("model.shared.weight")
        weights["model.encoder.embed_tokens.weight"] = shared
        weights["model.decoder.embed_tokens.weight"] = shared.copy()
        weights["lm_head.weight"] = np.random.default_rng(0).normal(
            0, 0.02, shared.shape).astype(np.float32)

    _rewrite_weights(directory, add_untied)
    offsets = _offsets(convert_marian(directory, tmp_path / "untied.ptm"))
    assert len(set(offsets)) == 3


def test_no_repeat_ngram_size_becomes_the_file_default(tmp_path: Path) -> None:
    directory = _marian_dir(tmp_path, "ngram")
    generation = json.loads((directory / "generation_config.json").read_text()) \
        if (directory / "generation_config.json").exists() else {}
    plain = _core.Model(str(convert_marian(directory, tmp_path / "plain.ptm")))
    assert _core.SearchOptions(plain).no_repeat_ngram_size == 0
    (directory / "generation_config.json").write_text(
        json.dumps({**generation, "no_repeat_ngram_size": 3}))
    path = convert_marian(directory, tmp_path / "ngram.ptm")
    assert _core.ModelFile(str(path)).metadata["generation.no_repeat_ngram_size"] == 3
    assert _core.SearchOptions(_core.Model(str(path))).no_repeat_ngram_size == 3
