"""pytransformer against transformers' own outputs on tiny random Marian models, without torch.

The fixtures (tests/data/marian/<variant>/: a Hugging Face directory + expected.json) are
written by tests/reference/make_marian_fixtures.py with transformers; here each directory is
converted with convert_marian and the core must reproduce transformers' tokenization, encoder
outputs and teacher-forced logits within 1e-4, and its greedy and beam-4 generations
token-for-token with sequence scores within 1e-4.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.format import read_model
from pytransformer.tokenizer import Tokenizer

from conftest import MARIAN_FIXTURES

VARIANTS = sorted(p.name for p in MARIAN_FIXTURES.iterdir() if (p / "expected.json").exists())
TOLERANCE = 1e-4


def expected(variant: str) -> dict:
    return json.loads((MARIAN_FIXTURES / variant / "expected.json").read_text(encoding="utf-8"))


def without_eos(tokens: list[int], eos: int) -> list[int]:
    """transformers' sequences end with EOS when finished; our hypotheses do not."""
    return tokens[:-1] if tokens and tokens[-1] == eos else tokens


def test_all_variants_present():
    assert {"base", "relu", "untied", "separate_vocabs"} <= set(VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS)
def test_tokenizer_matches_marian_tokenizer(variant, converted_marian):
    metadata, _ = read_model(converted_marian(variant))
    tokenizer = Tokenizer(metadata)
    for case in expected(variant)["cases"]:
        assert tokenizer.encode(case["text"]) == case["source_ids"], case["text"]
        generated = without_eos(case["greedy"], metadata["tokens.eos_id"])
        assert tokenizer.decode(generated) == case["greedy_text"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_and_logits(variant, converted_marian):
    model = _core.Model(str(converted_marian(variant)))
    compared = 0
    for case in expected(variant)["cases"]:
        hidden, lengths = model.encode([case["source_ids"]])
        assert list(lengths) == [len(case["source_ids"])]
        rows = np.asarray(case["encoder_rows"])
        np.testing.assert_allclose(np.asarray(hidden)[0, :len(rows)], rows, atol=TOLERANCE,
                                   rtol=0)
        if "logits" in case:
            logits = np.asarray(model.teacher_forced_logits([case["source_ids"]],
                                                            [case["target_ids"]])[0])
            np.testing.assert_allclose(logits, np.asarray(case["logits"]), atol=TOLERANCE,
                                       rtol=0)
            compared += 1
    assert compared > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_greedy_and_beam_generation(variant, converted_marian):
    path = converted_marian(variant)
    model = _core.Model(str(path))
    eos = read_model(path)[0]["tokens.eos_id"]
    cases = expected(variant)["cases"]
    sources = [case["source_ids"] for case in cases]

    greedy = _core.generate(model, sources, _core.SearchOptions(model, beam_size=1))
    beam = _core.generate(model, sources, _core.SearchOptions(model, beam_size=4, n_best=4))
    for case, greedy_result, beam_result in zip(cases, greedy, beam):
        assert list(greedy_result[0][0]) == without_eos(case["greedy"], eos)
        assert [list(h[0]) for h in beam_result] == [without_eos(t, eos) for t in case["beam"]]
        np.testing.assert_allclose([h[1] for h in beam_result], case["beam_scores"],
                                   atol=TOLERANCE, rtol=0)
