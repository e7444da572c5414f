"""Repetition controls in the ctranslate2 convention against CTranslate2 itself (the
transformers convention's are checked in test_decoding_transformers.py):
repetition_penalty and no_repeat_ngram_size, greedy and beam search, on a real trained
CTranslate2 model (../shared/peer-models), tokens and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import AREN_MODEL
from pytransformer import _core

ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is the reference")

CONTROLS = [{"no_repeat_ngram_size": 2}, {"no_repeat_ngram_size": 3},
            {"repetition_penalty": 1.5}, {"repetition_penalty": 0.7},
            {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2}]


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    if not (AREN_MODEL / "model.bin").exists():
        pytest.skip(f"{AREN_MODEL} is missing")
    from pytransformer.convert import convert_ctranslate2

    return convert_ctranslate2(AREN_MODEL, tmp_path_factory.mktemp("aren") / "aren.ptm")


@pytest.mark.parametrize("beam_size", [1, 4])
def test_repetition_controls_match_ctranslate2(converted: Path, beam_size: int) -> None:
    model = _core.Model(str(converted), threads=1)
    metadata = _core.ModelFile(str(converted)).metadata
    assert metadata["generation.search_convention"] == "ctranslate2"
    source_vocab, target_vocab = metadata["vocab.source"], metadata["vocab.target"]
    target_ids = {piece: i for i, piece in enumerate(target_vocab)}
    rng = np.random.default_rng(0)
    sources = [[int(i) for i in rng.integers(4, len(source_vocab) - 1, size=n)]
               for n in (5, 8, 12, 3, 9, 15, 20, 7)]
    reference = ctranslate2.Translator(str(AREN_MODEL), device="cpu", intra_threads=1)
    plain = None
    changed = 0
    for controls in [{}] + CONTROLS:
        options = _core.SearchOptions(model, beam_size=beam_size, max_length=30, **controls)
        ours = _core.generate(model, sources, options)
        theirs = reference.translate_batch([[source_vocab[i] for i in s] for s in sources],
                                           beam_size=beam_size, max_decoding_length=30,
                                           return_scores=True, **controls)
        for hypotheses, result in zip(ours, theirs):
            tokens, score, _ = hypotheses[0]
            assert tokens == [target_ids[t] for t in result.hypotheses[0]], controls
            assert score == pytest.approx(result.scores[0], abs=1e-4)
        best = [hypotheses[0][0] for hypotheses in ours]
        if plain is None:
            plain = best
        changed += sum(a != b for a, b in zip(best, plain))
    assert changed >= len(CONTROLS)  # the controls change what is generated


def test_cli_flags_reach_the_search(converted: Path) -> None:
    from typer.testing import CliRunner

    from pytransformer.cli.main import app

    metadata = _core.ModelFile(str(converted)).metadata
    vocabulary = metadata["vocab.source"]
    text = " ".join(vocabulary[i] for i in (7, 12, 30, 5, 18, 9))
    reference = ctranslate2.Translator(str(AREN_MODEL), device="cpu", intra_threads=1)
    runner = CliRunner()
    for flags, controls in ((["--repetition-penalty", "1.5"], {"repetition_penalty": 1.5}),
                            (["--no-repeat-ngram", "2"], {"no_repeat_ngram_size": 2})):
        result = runner.invoke(app, ["translate", "-m", str(converted), "--beam", "4", *flags,
                                     text], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        expected = reference.translate_batch([text.split()], beam_size=4, **controls)
        assert result.stdout.strip() == " ".join(expected[0].hypotheses[0])


def test_cli_penalty_on_a_transformers_model(marian: Path) -> None:
    from typer.testing import CliRunner

    from pytransformer import Translator
    from pytransformer.cli.main import app

    translator = Translator(marian, threads=1)
    for beam in ("1", "4"):
        result = CliRunner().invoke(app, ["translate", "-m", str(marian), "--beam", beam,
                                          "--repetition-penalty", "1.2", "a small test"],
                                    catch_exceptions=False)
        assert result.stdout.strip() == translator.translate(
            ["a small test"], beam_size=int(beam), repetition_penalty=1.2)[0].text
