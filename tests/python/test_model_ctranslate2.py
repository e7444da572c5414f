"""The reference compute path against CTranslate2 on the same Marian weights.

A tiny random transformers Marian fixture (tests/data/marian/) is converted twice, by
CTranslate2's own TransformersConverter and by pytransformer.convert.convert_marian; the
per-token log-probabilities CTranslate2 scores for a padded batch must match the log-softmax
of our teacher-forced logits.

CTranslate2 starts Marian decoders from a zero embedding (as Marian itself does) where
transformers embeds the padding id; real OPUS-MT checkpoints have an all-zero padding row, so
the two agree on them. The random fixture's padding row is zeroed here to compare like with like.
CTranslate2's Marian vocabulary also leaves out the padding piece, so its distributions are over
the other ids: the same columns are left out of our log-softmax.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is the reference")
transformers = pytest.importorskip("transformers", reason="CTranslate2's converter needs it")
torch = pytest.importorskip("torch", reason="CTranslate2's converter loads the model with torch")

from pytransformer import _core  # noqa: E402
from pytransformer.convert.marian import convert_marian  # noqa: E402
from pytransformer.format import read_model  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "marian"


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("variant", ["base", "deep"])
def test_marian_scores_match_ctranslate2(tmp_path: Path, variant: str) -> None:
    fixture = FIXTURES / variant
    if not fixture.is_dir():
        pytest.skip(f"fixture {fixture} is missing")
    model_dir = tmp_path / "hf"
    shutil.copytree(fixture, model_dir)
    marian = transformers.MarianMTModel.from_pretrained(fixture)
    with torch.no_grad():
        marian.get_input_embeddings().weight[marian.config.pad_token_id].zero_()
    marian.save_pretrained(model_dir)
    ct2_dir = tmp_path / "ct2"
    ctranslate2.converters.TransformersConverter(str(model_dir)).convert(str(ct2_dir))
    ours_path = convert_marian(model_dir, tmp_path / "model.ptm")
    metadata, _ = read_model(ours_path)
    source_vocab, target_vocab = metadata["vocab.source"], metadata["vocab.target"]
    eos, start = metadata["tokens.eos_id"], metadata["tokens.decoder_start_id"]
    target_size = len(target_vocab)

    vocabulary_file = next(ct2_dir.glob("*vocabulary.json"))
    ct2_pieces = set(json.loads(vocabulary_file.read_text()))
    absent = [i for i, piece in enumerate(target_vocab) if piece not in ct2_pieces]
    assert absent == [metadata["tokens.pad_id"]]

    rng = np.random.default_rng(0)
    pieces = [i for i in range(3, min(len(source_vocab), target_size)) if i not in absent]
    sources = [[int(i) for i in rng.choice(pieces, size=n)] + [eos] for n in (9, 3, 6)]
    targets = [[int(i) for i in rng.choice(pieces, size=n)] for n in (4, 7, 1)]
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", inter_threads=1,
                                        intra_threads=1)
    results = translator.score_batch([[source_vocab[i] for i in s] for s in sources],
                                     [[target_vocab[i] for i in t] for t in targets])

    model = _core.Model(str(ours_path), threads=1)
    logits = model.teacher_forced_logits(sources, [[start] + t for t in targets])
    worst = 0.0
    for ours, target, result in zip(logits, targets, results):
        expected = np.array(result.log_probs)
        assert len(expected) == len(target) + 1  # CTranslate2 also scores the final EOS
        ours = ours.copy()
        ours[:, absent] = -np.inf
        picked = log_softmax(ours)[np.arange(len(target) + 1), target + [eos]]
        worst = max(worst, float(np.abs(picked - expected).max()))
    print(variant, "max |log p| difference vs CTranslate2:", worst)
    assert worst < 1e-4


# The trained peer models live next to the repository (../shared/peer-models).
PEER_MODEL = (Path(__file__).resolve().parents[3] / "shared" / "peer-models" /
              "ctranslate2-aren-transliteration")


def test_trained_pre_norm_model_scores_match_ctranslate2(tmp_path: Path) -> None:
    """A real trained CTranslate2 model (pre-norm, tensor2tensor positions from 1)."""
    converter = pytest.importorskip("pytransformer.convert.ctranslate2",
                                    reason="the CTranslate2 converter is not available")
    if not (PEER_MODEL / "model.bin").exists():
        pytest.skip(f"{PEER_MODEL} is missing")
    path = tmp_path / "aren.ptm"
    converter.convert_ctranslate2(PEER_MODEL, path)
    metadata, _ = read_model(path)
    assert metadata["model.pre_norm"]
    source_vocab, target_vocab = metadata["vocab.source"], metadata["vocab.target"]
    eos, start = metadata["tokens.eos_id"], metadata["tokens.decoder_start_id"]
    rng = np.random.default_rng(1)
    sources = [[int(i) for i in rng.integers(4, len(source_vocab) - 1, size=n)] for n in (7, 3, 12)]
    targets = [[int(i) for i in rng.integers(4, len(target_vocab) - 1, size=n)] for n in (5, 2, 9)]
    translator = ctranslate2.Translator(str(PEER_MODEL), device="cpu", inter_threads=1,
                                        intra_threads=1)
    results = translator.score_batch([[source_vocab[i] for i in s] for s in sources],
                                     [[target_vocab[i] for i in t] for t in targets])
    logits = _core.Model(str(path), threads=1).teacher_forced_logits(
        sources, [[start] + t for t in targets])
    worst = 0.0
    for ours, target, result in zip(logits, targets, results):
        picked = log_softmax(ours)[np.arange(len(target) + 1), target + [eos]]
        worst = max(worst, float(np.abs(picked - np.array(result.log_probs)).max()))
    print("trained CTranslate2 model, max |log p| difference:", worst)
    assert worst < 1e-4
