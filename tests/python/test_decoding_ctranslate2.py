"""Greedy and beam search against ctranslate2.Translator, live, on the trained CTranslate2
Arabic->Latin transliteration model (../shared/peer-models), converted with
pytransformer.convert.ctranslate2: identical tokens and scores (return_scores) within 1e-4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ctranslate2 = pytest.importorskip("ctranslate2", reason="the comparison needs ctranslate2")
convert = pytest.importorskip("pytransformer.convert.ctranslate2",
                              reason="the CTranslate2 converter is not available")

from pytransformer import _core  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[3] / "shared" / "peer-models" / \
    "ctranslate2-aren-transliteration"
if not MODEL_DIR.is_dir():
    MODEL_DIR = Path("/work/shared/peer-models/ctranslate2-aren-transliteration")
SCORE_TOLERANCE = 1e-4
SENTENCES = 40

pytestmark = pytest.mark.skipif(not (MODEL_DIR / "model.bin").exists(),
                                reason=f"{MODEL_DIR} is missing")


class Pair:
    def __init__(self, path: Path):
        convert.convert_ctranslate2(MODEL_DIR, path)
        self.ours = _core.Model(str(path))
        metadata = _core.ModelFile(str(path)).metadata
        self.source_vocab = list(metadata["vocab.source"])
        self.target_vocab = list(metadata["vocab.target"])
        self.source_index = {token: i for i, token in enumerate(self.source_vocab)}
        self.target_index = {token: i for i, token in enumerate(self.target_vocab)}
        self.source_suffix = ([metadata["tokens.source_eos_id"]]
                              if metadata["tokenizer.add_source_eos"] else [])
        self.translator = ctranslate2.Translator(str(MODEL_DIR), device="cpu",
                                                 compute_type="float32", intra_threads=1)

    def letters(self) -> list[str]:
        return [t for t in self.source_vocab if not (t.startswith("<") and t.endswith(">"))]

    def random_sources(self, seed: int, count: int = SENTENCES) -> list[list[str]]:
        rng = np.random.default_rng(seed)
        letters = self.letters()
        return [[letters[i] for i in rng.integers(0, len(letters), size=int(rng.integers(1, 11)))]
                for _ in range(count)]

    def source_ids(self, sources: list[list[str]]) -> list[list[int]]:
        return [[self.source_index[t] for t in s] + self.source_suffix for s in sources]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Pair:
    return Pair(tmp_path_factory.mktemp("ct2") / "aren.ptm")


def compare(pair: Pair, sources: list[list[str]], *, beam_size: int, n_best: int = 1,
            max_length: int = 256, min_length: int = 1, length_penalty: float = 1.0,
            suppressed: list[str] = (), prefix=None, max_batch_tokens: int = 0) -> dict:
    expected = pair.translator.translate_batch(
        sources, target_prefix=prefix, beam_size=beam_size, num_hypotheses=n_best,
        max_decoding_length=max_length, min_decoding_length=min_length,
        length_penalty=length_penalty, return_scores=True,
        suppress_sequences=[[t] for t in suppressed] or None)
    options = _core.SearchOptions(
        pair.ours, beam_size=beam_size, n_best=n_best, max_length=max_length,
        min_length=min_length, length_penalty=length_penalty,
        suppressed_ids=[pair.target_index[t] for t in suppressed], forced_eos=False,
        convention="ctranslate2", max_batch_tokens=max_batch_tokens)
    ours = _core.generate(pair.ours, pair.source_ids(sources), options,
                          target_prefix=None if prefix is None else
                          [[pair.target_index[t] for t in p] if p else [] for p in prefix])
    stats = {"hypotheses": 0, "max_score_diff": 0.0}
    for i, (want, got) in enumerate(zip(expected, ours)):
        assert len(got) == len(want.hypotheses), i
        for k, ((tokens, score, finished), want_tokens, want_score) in enumerate(
                zip(got, want.hypotheses, want.scores)):
            assert [pair.target_vocab[t] for t in tokens] == want_tokens, (i, k)
            assert score == pytest.approx(want_score, abs=SCORE_TOLERANCE), (i, k)
            assert finished or len(tokens) == max_length, (i, k)
            stats["hypotheses"] += 1
            stats["max_score_diff"] = max(stats["max_score_diff"], abs(score - want_score))
    return stats


def test_known_transliterations_with_file_defaults(pair):
    sources = [["آ", "ت", "ز", "م", "و", "ن"], ["آ", "ت", "ش", "ي", "س", "و", "ن"]]
    result = _core.generate(pair.ours, pair.source_ids(sources))
    assert [[pair.target_vocab[t] for t in r[0][0]] for r in result] == \
        [list("atzmon"), list("achison")]


@pytest.mark.parametrize("beam_size", [1, 2, 3, 4, 5])
def test_matches_ctranslate2(pair, beam_size):
    for n_best in sorted({1, beam_size}):
        compare(pair, pair.random_sources(seed=beam_size * 10 + n_best), beam_size=beam_size,
                n_best=n_best)


@pytest.mark.parametrize("beam_size,n_best,length_penalty,max_length,min_length", [
    (2, 2, 0.0, 256, 1),    # no penalty: early exit once the top beam finishes
    (4, 2, 0.0, 256, 0),
    (3, 3, 0.6, 256, 1),
    (4, 4, 2.0, 256, 3),
    (5, 3, 1.0, 4, 1),      # max_length reached
    (1, 1, 0.0, 5, 2),
    (1, 1, 2.0, 256, 0),
])
def test_options_match_ctranslate2(pair, beam_size, n_best, length_penalty, max_length,
                                   min_length):
    compare(pair, pair.random_sources(seed=beam_size + 100 * min_length + max_length),
            beam_size=beam_size, n_best=n_best, length_penalty=length_penalty,
            max_length=max_length, min_length=min_length)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_suppressed_tokens_match_ctranslate2(pair, beam_size):
    compare(pair, pair.random_sources(seed=55), beam_size=beam_size, n_best=beam_size,
            suppressed=["a", "o", "<unk>"])


@pytest.mark.parametrize("beam_size", [1, 2, 4])
def test_target_prefix_matches_ctranslate2(pair, beam_size):
    sources = pair.random_sources(seed=66, count=20)
    rng = np.random.default_rng(beam_size)
    letters = [t for t in pair.target_vocab if not t.startswith("<")]
    prefix = [None if i % 3 == 0 else [letters[j] for j in rng.integers(0, len(letters),
                                                                         size=1 + i % 2)]
              for i in range(len(sources))]
    compare(pair, sources, beam_size=beam_size, n_best=beam_size, prefix=prefix)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_sub_batches_match_ctranslate2(pair, beam_size):
    compare(pair, pair.random_sources(seed=77), beam_size=beam_size, max_batch_tokens=16)
