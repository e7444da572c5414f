"""_core.generate on tiny random models: sampling (reproducibility, distribution, top-k/top-p),
streaming callback, interruption, batching, option checks. Reference comparisons are in
test_decoding_transformers.py and test_decoding_ctranslate2.py."""

from __future__ import annotations

import math
import signal
import time

import numpy as np
import pytest

from pytransformer import _core
from tiny_models import write_random_model

PAD, EOS, START = 0, 1, 0  # tiny_models' special ids (Marian layout)
VOCAB = 30


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("decoding") / "tiny.ptm"
    write_random_model(path, seed=7)
    return _core.Model(str(path))


@pytest.fixture(scope="module")
def eos_model(tmp_path_factory):
    """A model whose output bias favours EOS, so sentences finish at different steps."""
    path = tmp_path_factory.mktemp("decoding") / "eos.ptm"
    write_random_model(path, seed=8, output_bias=True)
    from pytransformer.format import read_model, write_model
    metadata, weights = read_model(path)
    bias = np.array(weights["dec.out_proj.bias"], dtype=np.float32)
    bias[EOS] += 3.0
    weights["dec.out_proj.bias"] = bias
    write_model(path, metadata, weights)
    return _core.Model(str(path))


def sources(count: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(3, VOCAB, size=int(rng.integers(1, 9)))] + [EOS]
            for _ in range(count)]


def first_step_log_probs(model, source: list[int], suppressed=(PAD,)) -> np.ndarray:
    """log-softmax of the first decoder step's logits with `suppressed` masked out."""
    logits = np.asarray(model.teacher_forced_logits([source], [[START]])[0], dtype=np.float64)[0]
    logits[list(suppressed)] = -np.inf
    return logits - np.logaddexp.reduce(logits)


# --- sampling ----------------------------------------------------------------------------------

def test_sampling_is_reproducible_for_a_seed(model):
    batch = sources(6, seed=1)
    options = dict(beam_size=1, sampling=True, n_best=3, max_length=12, seed=42)
    first = _core.generate(model, batch, _core.SearchOptions(model, **options))
    assert _core.generate(model, batch, _core.SearchOptions(model, **options)) == first
    assert _core.generate(model, batch, _core.SearchOptions(model, **{**options,
                                                                      "seed": 43})) != first


def test_samples_do_not_depend_on_the_batch(model):
    batch = sources(5, seed=2)
    together = _core.generate(model, batch, _core.SearchOptions(model, sampling=True, beam_size=1,
                                                                max_length=10, seed=5))
    split = _core.generate(model, batch, _core.SearchOptions(model, sampling=True, beam_size=1,
                                                             max_length=10, seed=5,
                                                             max_batch_tokens=9))
    assert split == together
    # Sentence 3 alone is input sentence 0 of another request: a different stream.
    alone = _core.generate(model, [batch[3]], _core.SearchOptions(model, sampling=True, beam_size=1,
                                                                  max_length=10, seed=5))
    assert len(alone) == 1


def test_top_k_1_equals_greedy(model):
    batch = sources(8, seed=3)
    greedy = _core.generate(model, batch, _core.SearchOptions(model, beam_size=1, max_length=15))
    sampled = _core.generate(model, batch, _core.SearchOptions(model, beam_size=1, max_length=15,
                                                               sampling=True, top_k=1, seed=9))
    assert sampled == greedy
    # Temperature 0 also means greedy.
    assert _core.generate(model, batch, _core.SearchOptions(model, beam_size=1, max_length=15,
                                                            sampling=True,
                                                            temperature=0.0)) == greedy


DRAWS = 6000


def draw_first_tokens(model, source, **options) -> np.ndarray:
    result = _core.generate(model, [source], _core.SearchOptions(model, beam_size=1, sampling=True,
                                                                 n_best=DRAWS, max_length=1,
                                                                 forced_eos=False, min_length=0,
                                                                 seed=11, **options))
    tokens = [tokens[0] if tokens else EOS for tokens, _, _ in result[0]]
    return np.bincount(tokens, minlength=VOCAB) / DRAWS


def assert_frequencies_match(frequencies: np.ndarray, probabilities: np.ndarray) -> None:
    # Five standard deviations of a binomial proportion, plus a little slack.
    bound = 5 * np.sqrt(probabilities * (1 - probabilities) / DRAWS) + 1e-3
    assert np.all(np.abs(frequencies - probabilities) <= bound), (frequencies, probabilities)


@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.7])
def test_sampling_distribution_is_the_softmax(model, temperature):
    source = sources(1, seed=4)[0]
    log_probs = first_step_log_probs(model, source) / temperature
    probabilities = np.exp(log_probs - np.logaddexp.reduce(log_probs))
    frequencies = draw_first_tokens(model, source, temperature=temperature)
    assert frequencies[PAD] == 0
    assert_frequencies_match(frequencies, probabilities)


def test_top_k_keeps_the_k_best_renormalised(model):
    source = sources(1, seed=5)[0]
    log_probs = first_step_log_probs(model, source)
    best = np.argsort(-log_probs)[:4]
    probabilities = np.zeros(VOCAB)
    probabilities[best] = np.exp(log_probs[best]) / np.exp(log_probs[best]).sum()
    assert_frequencies_match(draw_first_tokens(model, source, top_k=4), probabilities)


@pytest.mark.parametrize("top_p", [0.3, 0.75])
def test_top_p_keeps_the_nucleus(model, top_p):
    source = sources(1, seed=6)[0]
    log_probs = first_step_log_probs(model, source)
    order = np.argsort(-log_probs)
    mass_before = np.concatenate([[0.0], np.cumsum(np.exp(log_probs[order]))[:-1]])
    nucleus = order[mass_before < top_p]
    probabilities = np.zeros(VOCAB)
    probabilities[nucleus] = np.exp(log_probs[nucleus]) / np.exp(log_probs[nucleus]).sum()
    frequencies = draw_first_tokens(model, source, top_p=top_p)
    assert set(np.flatnonzero(frequencies)) <= set(nucleus)
    assert_frequencies_match(frequencies, probabilities)


def test_sample_scores_are_model_log_probabilities(model):
    source = sources(1, seed=7)[0]
    log_probs = first_step_log_probs(model, source)
    result = _core.generate(model, [source], _core.SearchOptions(model, beam_size=1, sampling=True,
                                                                 n_best=20, temperature=1.5,
                                                                 max_length=1, forced_eos=False,
                                                                 seed=3))
    scores = [score for _, score, _ in result[0]]
    assert scores == sorted(scores, reverse=True)
    for tokens, score, finished in result[0]:
        token = tokens[0] if tokens else EOS
        assert finished == (token == EOS)
        assert score == pytest.approx(log_probs[token], abs=1e-5)


# --- greedy and beam basics ----------------------------------------------------------------------

def test_empty_batch_gives_empty_result(model):
    assert _core.generate(model, []) == []
    assert _core.generate(model, [], _core.SearchOptions(model, beam_size=3, n_best=2)) == []


def test_results_follow_input_order_and_n_best(eos_model):
    batch = sources(10, seed=8)
    together = _core.generate(eos_model, batch, _core.SearchOptions(eos_model, beam_size=3,
                                                                    n_best=3, max_length=12))
    assert len(together) == 10
    for i, source in enumerate(batch):
        options = _core.SearchOptions(eos_model, beam_size=3, n_best=3, max_length=12)
        assert _core.generate(eos_model, [source], options) == [together[i]]
    for hypotheses in together:
        assert len(hypotheses) == 3
        scores = [score for _, score, _ in hypotheses]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("convention", ["transformers", "ctranslate2"])
@pytest.mark.parametrize("beam_size", [1, 4])
def test_lengths_respect_min_and_max(eos_model, convention, beam_size):
    batch = sources(12, seed=9)
    result = _core.generate(eos_model, batch, _core.SearchOptions(eos_model, beam_size=beam_size,
                                                                  n_best=beam_size, max_length=7,
                                                                  min_length=3, forced_eos=False,
                                                                  convention=convention))
    for hypotheses in result:
        for tokens, _, finished in hypotheses:
            # min_length counts generated tokens before EOS can be chosen; max_length counts EOS.
            assert 3 <= len(tokens) <= 7
            assert not finished or len(tokens) <= 6
            assert PAD not in tokens


def test_forced_eos_ends_every_hypothesis(model):
    result = _core.generate(model, sources(6, seed=10), _core.SearchOptions(model, beam_size=2,
                                                                            n_best=2, max_length=5,
                                                                            forced_eos=True))
    assert all(finished for hypotheses in result for _, _, finished in hypotheses)


@pytest.mark.parametrize("convention", ["transformers", "ctranslate2"])
def test_target_prefix_starts_every_hypothesis(model, convention):
    batch = sources(4, seed=11)
    prefixes = [[5, 6], [], [7], None]
    options = _core.SearchOptions(model, beam_size=3, n_best=2, max_length=8,
                                  convention=convention)
    result = _core.generate(model, batch, options, target_prefix=prefixes)
    for hypotheses, prefix in zip(result, prefixes):
        for tokens, _, _ in hypotheses:
            assert tokens[:len(prefix or [])] == (prefix or [])


# --- callback and interruption ---------------------------------------------------------------------

def test_callback_streams_every_token_in_order(eos_model):
    batch = sources(7, seed=12)
    calls: list[tuple[int, int]] = []
    result = _core.generate(eos_model, batch,
                            _core.SearchOptions(eos_model, beam_size=1, max_length=10),
                            callback=lambda s, t: calls.append((s, t)))
    streams = [[] for _ in batch]
    for sentence, token in calls:
        streams[sentence].append(token)
    for (tokens, _, finished), stream in zip((r[0] for r in result), streams):
        assert stream == tokens + ([EOS] if finished else [])
    # Step by step: the t-th token of every live sentence, in increasing sentence index.
    expected = [(s, streams[s][t]) for t in range(max(map(len, streams)))
                for s in range(len(batch)) if t < len(streams[s])]
    assert calls == expected


def test_callback_returning_false_stops_decoding(model):
    batch = sources(4, seed=13)
    calls = []

    def stop_after_six(sentence, token):
        calls.append(sentence)
        return len(calls) < 6

    result = _core.generate(model, batch,
                            _core.SearchOptions(model, beam_size=1, max_length=20,
                                                forced_eos=False), callback=stop_after_six)
    assert len(calls) == 6
    # The results hold exactly the tokens reported (an EOS counts as a reported token).
    for i, hypotheses in enumerate(result):
        tokens, _, finished = hypotheses[0]
        assert len(tokens) + finished == calls.count(i)


def test_callback_returning_none_or_true_continues(model):
    batch = sources(3, seed=14)
    plain = _core.generate(model, batch, _core.SearchOptions(model, beam_size=1, max_length=9))
    assert _core.generate(model, batch, _core.SearchOptions(model, beam_size=1, max_length=9),
                          callback=lambda s, t: None) == plain
    assert _core.generate(model, batch, _core.SearchOptions(model, beam_size=1, max_length=9),
                          callback=lambda s, t: 1) == plain


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_callback_exceptions_propagate(model, error):
    def failing(sentence, token):
        raise error

    with pytest.raises(type(error)):
        _core.generate(model, sources(3, seed=15),
                       _core.SearchOptions(model, beam_size=1, max_length=9), callback=failing)
    # The model is still usable afterwards.
    assert len(_core.generate(model, sources(2), _core.SearchOptions(model, beam_size=1,
                                                                     max_length=3))) == 2


class Alarm(Exception):
    pass


def test_a_signal_interrupts_a_long_decode_without_callback(model):
    batch = sources(400, seed=16)
    options = dict(beam_size=4, max_length=60, forced_eos=False, max_batch_tokens=40)
    start = time.perf_counter()
    _core.generate(model, batch, _core.SearchOptions(model, **options))
    full = time.perf_counter() - start

    def raise_alarm(signum, frame):
        raise Alarm()

    previous = signal.signal(signal.SIGALRM, raise_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, full / 5)
        start = time.perf_counter()
        with pytest.raises(Alarm):
            _core.generate(model, batch, _core.SearchOptions(model, **options))
        assert time.perf_counter() - start < full * 0.8
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- option checks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("options,message", [
    (dict(beam_size=0), "beam_size"),
    (dict(beam_size=2, n_best=3), "n_best"),
    (dict(n_best=0), "n_best"),
    (dict(max_length=0), "max_length"),
    (dict(max_length=65), "max_positions"),
    (dict(max_length=5, min_length=6), "min_length"),
    (dict(min_length=-1), "min_length"),
    (dict(beam_size=2, sampling=True), "sampling"),
    (dict(beam_size=1, sampling=True, top_p=0.0), "top_p"),
    (dict(beam_size=1, sampling=True, top_p=1.5), "top_p"),
    (dict(beam_size=1, sampling=True, top_k=-1), "top_k"),
    (dict(beam_size=1, sampling=True, temperature=-1.0), "temperature"),
    (dict(length_penalty=math.nan), "length_penalty"),
    (dict(suppressed_ids=[VOCAB]), "suppressed_ids"),
    (dict(target_prefix=[[3]]), "target_prefix"),
    (dict(target_prefix=[[3], [VOCAB]]), "target_prefix"),
    (dict(convention="fairseq"), "convention"),
    (dict(beam_size=2, callback=lambda s, t: None), "callback"),
    (dict(max_batch_tokens=-1), "max_batch_tokens"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size"),
    (dict(max_length_factor=2.0), "max_length_factor is only defined for the marian"),
    (dict(convention="marian", max_length_factor=-1.0), "max_length_factor must be >= 0"),
    (dict(word_penalty=1.0), "word_penalty is only defined for the marian"),
    (dict(convention="marian", word_penalty=math.inf), "word_penalty must be finite"),
])
def test_invalid_options_raise_value_error(model, options, message):
    options = dict(options)
    inputs = {key: options.pop(key) for key in ("target_prefix", "callback") if key in options}
    with pytest.raises(ValueError, match=message):
        _core.generate(model, [[3, 4, EOS], [5, EOS]], _core.SearchOptions(model, **options),
                       **inputs)


def test_search_options_start_from_the_model_file(tmp_path):
    """SearchOptions(model) holds the file's generation.* defaults, resolved by the core; a
    keyword sets one option; an unknown keyword or a value of the wrong type is a TypeError."""
    path = tmp_path / "defaults.ptm"
    write_random_model(path, seed=3, d_model=32, beam_size=3, max_length=7,
                       suppressed_ids=[5, 6], extra={"generation.length_penalty": 0.5})
    model = _core.Model(str(path))
    options = _core.SearchOptions(model)
    assert (options.beam_size, options.max_length, options.length_penalty,
            options.suppressed_ids, options.convention) == (3, 7, 0.5, [5, 6], "transformers")
    assert (options.n_best, options.sampling, options.top_k, options.top_p) == (1, False, 0, 1.0)
    assert _core.generate(model, [[3, 4, EOS]]) == _core.generate(model, [[3, 4, EOS]], options)
    changed = _core.SearchOptions(model, beam_size=1, convention="ctranslate2")
    assert (changed.beam_size, changed.max_length, changed.convention) == (1, 7, "ctranslate2")
    assert "beam_size=1" in repr(changed) and "ctranslate2" in repr(changed)
    with pytest.raises(TypeError, match="unknown search option 'beam'"):
        _core.SearchOptions(model, beam=2)
    with pytest.raises(TypeError, match="unknown search option 'target_prefix'"):
        _core.SearchOptions(model, target_prefix=[[3]])
    with pytest.raises(TypeError):
        _core.SearchOptions(model, beam_size="2")
    with pytest.raises(ValueError, match="convention"):
        changed.convention = "fairseq"


@pytest.mark.parametrize("source", [[], [-1, EOS], [VOCAB, EOS], [2**40]])
def test_invalid_sources_raise_value_error(model, source):
    with pytest.raises(ValueError):
        _core.generate(model, [[3, EOS], source], _core.SearchOptions(model, beam_size=2))
