"""Vocabulary shortlists in the core (generate(..., allowed_ids=...), docs/decoding.md).

Each sentence may generate only its own ids; its scores are normalised over them (Marian's
output layer restricted to a shortlist). The CPU model computes the output layer only for the
union of a sub-batch's lists (rows selected from the packed weight: tests/cpp checks the bytes
of that selection for every kernel variant); these tests check what a user sees:

- where the search masks before normalising anyway (greedy, sampling, CTranslate2's beam
  search), the tokens and scores equal those of suppressing every other id, bit for bit;
- in transformers' beam search, whose processors act after the log-softmax, the scores are the
  teacher-forced log-probabilities normalised over the allowed ids;
- a sentence's result does not depend on the other sentences of the call, and no id outside
  its list is ever generated;
- on every kernel variant this CPU runs (the scalar one reads the stored rows instead).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytransformer import _core
from tiny_models import write_random_model

VOCAB = 300  # several panels of output columns for every kernel variant
SOURCES = [[5, 9, 3, 40, 1], [7, 1], [4, 4, 8, 120, 6, 1], [250, 17, 1]]
EOS = 1


def _allowed(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(np.arange(3, VOCAB), size=size, replace=False).tolist())
            for size in (12, 40, 5, 90)]


@pytest.fixture(scope="module", params=["float32", "untied_bias", "int8_all", "q8_0"])
def model_path(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("allowed") / f"{request.param}.ptm"
    overrides = {"source_vocab_size": VOCAB, "target_vocab_size": VOCAB, "d_model": 32,
                 "max_positions": 64}
    if request.param == "untied_bias":
        write_random_model(path, seed=3, tied=False, output_bias=True, **overrides)
    else:
        quantize = None if request.param == "float32" else request.param
        write_random_model(path, seed=3, quantize=quantize, **overrides)
    return path


SEARCHES = {
    "greedy": {"beam_size": 1},
    "sampling": {"beam_size": 1, "sampling": True, "temperature": 0.9, "top_k": 8, "seed": 5},
    "beam_ctranslate2": {"beam_size": 3, "n_best": 2, "convention": "ctranslate2"},
}


@pytest.mark.parametrize("search", list(SEARCHES))
def test_same_as_suppressing_every_other_id(model_path: Path, search: str) -> None:
    model = _core.Model(str(model_path), threads=1)
    allowed = _allowed(1)
    options = _core.SearchOptions(model, max_length=12, **SEARCHES[search])
    given = list(options.suppressed_ids)
    for source, ids in zip(SOURCES, allowed):  # alone: a sampled sentence's draws follow its index
        options.suppressed_ids = given
        result = _core.generate(model, [source], options, allowed_ids=[ids])
        keep = set(ids) | {EOS}
        options.suppressed_ids = given + [i for i in range(VOCAB) if i not in keep]
        assert _core.generate(model, [source], options) == result
        for tokens, _, _ in result[0]:
            assert set(tokens) <= set(ids)


def test_transformers_beam_scores_normalised_over_the_allowed_ids(model_path: Path) -> None:
    """Each returned hypothesis that ran to max_length (random weights rarely end) scores the
    mean of its teacher-forced log-probabilities over the allowed ids (length penalty 1)."""
    model = _core.Model(str(model_path), threads=1)
    allowed = _allowed(2)
    options = _core.SearchOptions(model, beam_size=4, n_best=2, max_length=10, forced_eos=False,
                                  length_penalty=1.0, convention="transformers")
    got = _core.generate(model, SOURCES, options, allowed_ids=allowed)
    start = model.config["decoder_start_id"]
    checked = 0
    for source, ids, result in zip(SOURCES, allowed, got):
        allowed_set = sorted(set(ids) | {EOS})
        for tokens, score, finished in result:
            assert set(tokens) <= set(ids)
            if finished:
                continue
            logits = model.teacher_forced_logits([source], [[start] + tokens[:-1]])[0]
            restricted = logits.astype(np.float64)[:, allowed_set]
            shifted = restricted - restricted.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            total = sum(log_probs[t, allowed_set.index(token)] for t, token in enumerate(tokens))
            assert score == pytest.approx(total / len(tokens), abs=1e-4)
            checked += 1
    assert checked >= len(SOURCES)


def test_results_do_not_depend_on_the_batch(model_path: Path) -> None:
    model = _core.Model(str(model_path), threads=1)
    allowed = _allowed(3)
    for convention in ("transformers", "ctranslate2"):
        options = _core.SearchOptions(model, beam_size=3, max_length=12, convention=convention)
        together = _core.generate(model, SOURCES, options, allowed_ids=allowed)
        alone = [_core.generate(model, [s], options, allowed_ids=[a])[0]
                 for s, a in zip(SOURCES, allowed)]
        assert together == alone
        reversed_order = _core.generate(model, SOURCES[::-1], options, allowed_ids=allowed[::-1])
        assert reversed_order == together[::-1]


def test_every_id_allowed_is_no_shortlist(model_path: Path) -> None:
    model = _core.Model(str(model_path), threads=1)
    options = _core.SearchOptions(model, beam_size=2, max_length=12)
    everything = [list(range(VOCAB))] * len(SOURCES)
    assert (_core.generate(model, SOURCES, options, allowed_ids=everything)
            == _core.generate(model, SOURCES, options))


def test_target_prefix_and_eos_are_always_allowed(model_path: Path) -> None:
    model = _core.Model(str(model_path), threads=1)
    options = _core.SearchOptions(model, beam_size=2, max_length=6, forced_eos=True)
    results = _core.generate(model, SOURCES[:2], options, allowed_ids=[[20], [21, 22]],
                             target_prefix=[[200, 201], None])
    first, second = results[0][0], results[1][0]
    assert first[0][:2] == [200, 201] and set(first[0][2:]) <= {20, 200, 201}
    assert set(second[0]) <= {21, 22}
    assert first[2] and second[2]  # forced EOS, although no list holds it


def test_bad_allowed_ids_are_clear_errors(model_path: Path) -> None:
    model = _core.Model(str(model_path), threads=1)
    with pytest.raises(ValueError, match="allowed_ids has 1 entries for 2 sentences"):
        _core.generate(model, SOURCES[:2], allowed_ids=[[3]])
    with pytest.raises(ValueError, match="outside the target vocabulary"):
        _core.generate(model, SOURCES[:1], allowed_ids=[[VOCAB]])
    with pytest.raises((ValueError, TypeError)):
        _core.generate(model, SOURCES[:1], allowed_ids=[[-1]])


_VARIANT_SCRIPT = """
import json, sys
from pytransformer import _core
path, sources, allowed, vocab = sys.argv[1], *json.loads(sys.argv[2])
model = _core.Model(path, threads=1)
options = _core.SearchOptions(model, beam_size=1, max_length=12)
got = _core.generate(model, sources, options, allowed_ids=allowed)
want = []
for source, ids in zip(sources, allowed):
    options.suppressed_ids = [0] + [i for i in range(vocab) if i not in set(ids) | {1}]
    want += _core.generate(model, [source], options)
print(json.dumps([got == want, _core.cpu_info()["selected_isa"]]))
"""


@pytest.mark.parametrize("isa", _core.cpu_info()["supported_isas"])
def test_every_kernel_variant(model_path: Path, isa: str) -> None:
    environment = dict(os.environ, PYTRANSFORMER_ISA=isa)
    output = subprocess.run(
        [sys.executable, "-c", _VARIANT_SCRIPT, str(model_path),
         json.dumps([SOURCES, _allowed(4), VOCAB])],
        env=environment, capture_output=True, text=True, check=True).stdout
    assert json.loads(output) == [True, isa]
