"""Greedy and beam search against transformers' MarianMTModel.generate, live, on tiny random
Marian models converted with pytransformer.convert.marian: tokens must be identical and scores
(sequences_scores for beams, summed transition log-probabilities for greedy) within 1e-4."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformers comparison needs torch")
transformers = pytest.importorskip("transformers", reason="the comparison needs transformers")

from pytransformer import _core  # noqa: E402
from pytransformer.convert.marian import convert_marian  # noqa: E402
from marian_weights import randomize_marian  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "marian" / "base"
EOS = 0
SCORE_TOLERANCE = 1e-4
SENTENCES = 24
PAIR_NAMES = ["long", "eos", "mixed"]


class MarianPair:
    """A random MarianMTModel and the same weights in our format."""

    def __init__(self, directory: Path, seed: int, eos_boost: float, d_model: int = 32,
                 layers: int = 2, heads: int = 4, activation: str = "swish"):
        vocab = json.loads((FIXTURE / "vocab.json").read_text(encoding="utf-8"))
        self.vocab_size = len(vocab)
        self.pad = vocab["<pad>"]
        directory.mkdir(parents=True)
        for name in ("vocab.json", "source.spm", "target.spm", "tokenizer_config.json"):
            shutil.copy(FIXTURE / name, directory / name)
        config = transformers.MarianConfig(
            vocab_size=self.vocab_size, decoder_vocab_size=self.vocab_size, d_model=d_model,
            encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=heads,
            decoder_attention_heads=heads, encoder_ffn_dim=2 * d_model,
            decoder_ffn_dim=2 * d_model, activation_function=activation,
            max_position_embeddings=64, scale_embedding=True, pad_token_id=self.pad,
            decoder_start_token_id=self.pad, eos_token_id=EOS, forced_eos_token_id=EOS)
        torch.manual_seed(seed)
        self.hf = transformers.MarianMTModel(config).eval()
        randomize_marian(self.hf, eos=EOS, eos_boost=eos_boost)
        # What the converter turns into the file's generation.* defaults.
        self.defaults = transformers.GenerationConfig(
            num_beams=4, max_length=21, bad_words_ids=[[self.pad]], forced_eos_token_id=EOS,
            eos_token_id=EOS, pad_token_id=self.pad, decoder_start_token_id=self.pad)
        self.hf.generation_config = self.defaults
        self.hf.save_pretrained(directory)
        # generate() merges unset options from the model's config: leave nothing to merge.
        self.hf.generation_config = transformers.GenerationConfig(
            eos_token_id=EOS, pad_token_id=self.pad, decoder_start_token_id=self.pad)
        self.path = convert_marian(directory, directory / "model.ptm")
        self.ours = _core.Model(str(self.path))

    def sources(self, seed: int, count: int = SENTENCES) -> list[list[int]]:
        rng = np.random.default_rng(seed)
        return [[int(t) for t in rng.integers(2, self.pad, size=int(rng.integers(1, 12)))] + [EOS]
                for _ in range(count)]

    def hf_generate(self, sources: list[list[int]], *, beam_size: int, n_best: int = 1,
                    max_length: int, min_length: int = 0, length_penalty: float = 1.0,
                    forced_eos: bool = True, renormalize: bool = False,
                    prefix: list[list[int]] | None = None, no_repeat_ngram_size: int = 0,
                    repetition_penalty: float = 1.0):
        longest = max(len(s) for s in sources)
        input_ids = torch.tensor([s + [self.pad] * (longest - len(s)) for s in sources])
        mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in sources])
        config = transformers.GenerationConfig(
            num_beams=beam_size, num_return_sequences=n_best, max_new_tokens=max_length,
            min_new_tokens=min_length or None, length_penalty=length_penalty,
            bad_words_ids=[[self.pad]], forced_eos_token_id=EOS if forced_eos else None,
            eos_token_id=EOS, pad_token_id=self.pad, decoder_start_token_id=self.pad,
            early_stopping=False, do_sample=False, renormalize_logits=renormalize,
            no_repeat_ngram_size=no_repeat_ngram_size or None,
            repetition_penalty=repetition_penalty, output_scores=True,
            return_dict_in_generate=True)
        kwargs = {}
        if prefix is not None:
            kwargs["decoder_input_ids"] = torch.tensor([[self.pad] + p for p in prefix])
        with torch.no_grad():
            return self.hf.generate(input_ids=input_ids, attention_mask=mask,
                                    generation_config=config, **kwargs)


def split_hf_sequence(sequence: list[int], skip: int, pad: int) -> tuple[list[int], bool]:
    """Generated tokens (after the `skip` start/prefix tokens), cut at EOS, and whether EOS ended
    them."""
    generated = sequence[skip:]
    if EOS in generated:
        return generated[:generated.index(EOS)], True
    while generated and generated[-1] == pad:
        generated.pop()
    return generated, False


def greedy_scores(output, pad: int) -> list[float]:
    """transformers' greedy sequence score as we define it: summed log-softmax of the processed
    scores of every generated token, EOS included."""
    log_probs = [torch.log_softmax(step.float(), dim=-1) for step in output.scores]
    generated = output.sequences[:, -len(log_probs):]
    totals = []
    for row in range(generated.shape[0]):
        total = 0.0
        for step, token in enumerate(generated[row].tolist()):
            total += float(log_probs[step][row, token])
            if token == EOS:
                break
        totals.append(total)
    return totals


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, MarianPair]:
    root = tmp_path_factory.mktemp("marian")
    return {
        # EOS rarely wins: translations run to max_length.
        "long": MarianPair(root / "long", seed=11, eos_boost=0.0),
        # EOS often wins after a few tokens: early finishing and the stopping heuristic.
        "eos": MarianPair(root / "eos", seed=12, eos_boost=3.0, activation="relu"),
        "mixed": MarianPair(root / "mixed", seed=13, eos_boost=2.0, d_model=48, layers=3,
                            heads=6, activation="gelu"),
    }


def compare(pair: MarianPair, sources, *, beam_size: int, n_best: int = 1, max_length: int,
            min_length: int = 0, length_penalty: float = 1.0, forced_eos: bool = True,
            renormalize: bool = False, prefix=None, max_batch_tokens: int = 0,
            no_repeat_ngram_size: int = 0, repetition_penalty: float = 1.0) -> dict:
    expected = pair.hf_generate(sources, beam_size=beam_size, n_best=n_best,
                                max_length=max_length, min_length=min_length,
                                length_penalty=length_penalty, forced_eos=forced_eos,
                                renormalize=renormalize, prefix=prefix,
                                no_repeat_ngram_size=no_repeat_ngram_size,
                                repetition_penalty=repetition_penalty)
    options = _core.SearchOptions(
        pair.ours, beam_size=beam_size, n_best=n_best, max_length=max_length,
        min_length=min_length, length_penalty=length_penalty, suppressed_ids=[pair.pad],
        forced_eos=forced_eos, renormalize_logits=renormalize, convention="transformers",
        max_batch_tokens=max_batch_tokens, no_repeat_ngram_size=no_repeat_ngram_size,
        repetition_penalty=repetition_penalty)
    ours = _core.generate(pair.ours, sources, options, target_prefix=prefix)
    skip = 1 + (len(prefix[0]) if prefix else 0)
    sequences = expected.sequences.tolist()
    if beam_size == 1:
        scores = greedy_scores(expected, pair.pad)
    else:
        scores = expected.sequences_scores.tolist()
    stats = {"sentences": len(sources), "hypotheses": 0, "finished": 0, "max_score_diff": 0.0}
    assert len(ours) == len(sources)
    for i, hypotheses in enumerate(ours):
        assert len(hypotheses) == n_best
        for k, (tokens, score, finished) in enumerate(hypotheses):
            row = i * n_best + k
            want_tokens, want_finished = split_hf_sequence(sequences[row], skip, pair.pad)
            if prefix:
                want_tokens = prefix[i] + want_tokens
            assert tokens == want_tokens, (i, k, tokens, want_tokens)
            assert finished == want_finished, (i, k)
            assert score == pytest.approx(scores[row], abs=SCORE_TOLERANCE), (i, k)
            stats["max_score_diff"] = max(stats["max_score_diff"], abs(score - scores[row]))
            stats["hypotheses"] += 1
            stats["finished"] += finished
    return stats


@pytest.mark.parametrize("name", PAIR_NAMES)
@pytest.mark.parametrize("max_length,min_length,forced_eos", [
    (20, 0, True), (6, 0, False), (12, 3, True)])
def test_greedy_matches_transformers(pairs, name, max_length, min_length, forced_eos):
    pair = pairs[name]
    compare(pair, pair.sources(seed=max_length), beam_size=1, max_length=max_length,
            min_length=min_length, forced_eos=forced_eos)


BEAM_CONFIGS = [
    # beam_size, n_best, length_penalty, max_length, min_length, forced_eos, renormalize
    (2, 1, 1.0, 20, 0, True, False),
    (2, 2, 0.6, 10, 0, False, False),
    (4, 1, 1.0, 20, 0, True, False),
    (4, 3, 2.0, 14, 2, True, False),
    (4, 4, 0.0, 12, 0, True, True),
    (5, 1, 1.0, 20, 0, True, True),
    (5, 5, 1.0, 5, 0, False, False),
    (5, 2, -0.5, 16, 4, True, False),
]


# Each configuration on two of the three models (transformers' generate is what takes time).
BEAM_CASES = [pytest.param(PAIR_NAMES[(i + j) % 3], config,
                           id="{}-beam{}-n{}-lp{}-max{}-min{}".format(PAIR_NAMES[(i + j) % 3],
                                                                     *config))
              for i, config in enumerate(BEAM_CONFIGS) for j in range(2)]


@pytest.mark.parametrize("name,config", BEAM_CASES)
def test_beam_search_matches_transformers(pairs, name, config):
    beam_size, n_best, length_penalty, max_length, min_length, forced_eos, renormalize = config
    pair = pairs[name]
    compare(pair, pair.sources(seed=beam_size * 100 + n_best), beam_size=beam_size,
            n_best=n_best, max_length=max_length, min_length=min_length,
            length_penalty=length_penalty, forced_eos=forced_eos, renormalize=renormalize)


def test_early_finishing_paths_are_exercised(pairs):
    """The EOS-prone model must finish hypotheses before max_length (else the stopping rules
    above were not tested) and the plain one must hit max_length."""
    eos = compare(pairs["eos"], pairs["eos"].sources(seed=5), beam_size=4, n_best=4,
                  max_length=20, forced_eos=False)
    assert eos["finished"] > eos["hypotheses"] // 2
    long = compare(pairs["long"], pairs["long"].sources(seed=5), beam_size=4, max_length=8,
                   forced_eos=False)
    assert long["finished"] < long["hypotheses"]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_target_prefix_matches_transformers(pairs, beam_size):
    pair = pairs["mixed"]
    sources = pair.sources(seed=77, count=12)
    rng = np.random.default_rng(3)
    prefix = [[int(t) for t in rng.integers(2, pair.pad, size=3)] for _ in sources]
    compare(pair, sources, beam_size=beam_size, n_best=beam_size, max_length=10, prefix=prefix)


def repeats_an_ngram(tokens: list[int], size: int, start: int) -> bool:
    sequence = [start] + tokens
    ngrams = [tuple(sequence[i:i + size]) for i in range(len(sequence) - size + 1)]
    return len(ngrams) != len(set(ngrams))


@pytest.mark.parametrize("beam_size,size,prefix", [(1, 2, False), (1, 3, True), (4, 2, False),
                                                   (3, 3, True), (2, 1, False)])
def test_no_repeat_ngram_matches_transformers(pairs, beam_size, size, prefix):
    """The long-running model repeats n-grams by itself; with no_repeat_ngram_size none is
    repeated, and the outputs and scores are transformers' NoRepeatNGramLogitsProcessor's."""
    pair = pairs["long"]
    sources = pair.sources(seed=31 + size, count=12)
    rng = np.random.default_rng(size)
    prefixes = ([[int(t) for t in rng.integers(2, pair.pad, size=2)] for _ in sources]
                if prefix else None)
    plain = _core.generate(pair.ours, sources, _core.SearchOptions(
        pair.ours, beam_size=beam_size, max_length=16, suppressed_ids=[pair.pad]),
        target_prefix=prefixes)
    assert any(repeats_an_ngram(hypotheses[0][0], size, pair.pad) for hypotheses in plain)
    compare(pair, sources, beam_size=beam_size, max_length=16, prefix=prefixes,
            no_repeat_ngram_size=size)
    banned = _core.generate(pair.ours, sources, _core.SearchOptions(
        pair.ours, beam_size=beam_size, max_length=16, suppressed_ids=[pair.pad],
        no_repeat_ngram_size=size), target_prefix=prefixes)
    assert not any(repeats_an_ngram(hypotheses[0][0], size, pair.pad) for hypotheses in banned
                   if size > 1)


@pytest.mark.parametrize("beam_size,penalty", [(1, 1.5), (4, 1.5), (3, 0.8), (4, 3.0)])
def test_repetition_penalty_matches_transformers(pairs, beam_size, penalty):
    """transformers' RepetitionPenaltyLogitsProcessor: on the scores in greedy search, on the
    beams' log-probabilities in beam search; the outputs change, and equal transformers'."""
    pair = pairs["long"]
    sources = pair.sources(seed=41, count=12)
    plain = _core.generate(pair.ours, sources, _core.SearchOptions(
        pair.ours, beam_size=beam_size, max_length=16, suppressed_ids=[pair.pad]))
    penalised = _core.generate(pair.ours, sources, _core.SearchOptions(
        pair.ours, beam_size=beam_size, max_length=16, suppressed_ids=[pair.pad],
        repetition_penalty=penalty))
    assert any(a[0][0] != b[0][0] for a, b in zip(plain, penalised))
    compare(pair, sources, beam_size=beam_size, max_length=16, repetition_penalty=penalty)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_sub_batches_give_the_same_results(pairs, beam_size):
    """Sorting by length and splitting by max_batch_tokens must not change anything."""
    pair = pairs["eos"]
    compare(pair, pair.sources(seed=9), beam_size=beam_size, max_length=15,
            max_batch_tokens=20)


def test_file_defaults_reproduce_generation_config(pairs):
    """None options take the converted generation_config (4 beams, 20 new tokens, pad
    suppressed, forced EOS)."""
    pair = pairs["eos"]
    sources = pair.sources(seed=21)
    ours = _core.generate(pair.ours, sources)
    longest = max(len(s) for s in sources)
    with torch.no_grad():
        expected = pair.hf.generate(
            input_ids=torch.tensor([s + [pair.pad] * (longest - len(s)) for s in sources]),
            attention_mask=torch.tensor([[1] * len(s) + [0] * (longest - len(s))
                                         for s in sources]),
            generation_config=pair.defaults, output_scores=True, return_dict_in_generate=True)
    for i, hypotheses in enumerate(ours):
        tokens, score, _ = hypotheses[0]
        assert tokens == split_hf_sequence(expected.sequences[i].tolist(), 1, pair.pad)[0]
        assert score == pytest.approx(float(expected.sequences_scores[i]), abs=SCORE_TOLERANCE)
