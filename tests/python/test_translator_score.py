"""Translator.score (forced decoding of given translations) against the references:
CTranslate2's score_batch on a real trained CTranslate2 model, and transformers' MarianMTModel
log-softmax on the Marian fixture, token by token."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import AREN_MODEL, MARIAN_FIXTURES
from pytransformer import Score, Translator


def test_scores_match_ctranslate2_score_batch(tmp_path: Path) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is the reference")
    if not (AREN_MODEL / "model.bin").exists():
        pytest.skip(f"{AREN_MODEL} is missing")
    from pytransformer.convert import convert_ctranslate2

    path = convert_ctranslate2(AREN_MODEL, tmp_path / "aren.ptm")
    translator = Translator(path, threads=1)
    vocabulary = translator.tokenizer.source_vocab
    target_vocabulary = translator.tokenizer.target_vocab
    rng = np.random.default_rng(2)
    sources = [" ".join(vocabulary[i] for i in rng.integers(4, len(vocabulary) - 1, size=n))
               for n in (6, 2, 11)]
    targets = [" ".join(target_vocabulary[i]
                        for i in rng.integers(4, len(target_vocabulary) - 1, size=n))
               for n in (4, 1, 8)]
    targets[1] = ""  # only the end token is scored
    ours = translator.score(sources, targets)
    reference = ctranslate2.Translator(str(AREN_MODEL), device="cpu", intra_threads=1)
    expected = reference.score_batch([s.split() for s in sources], [t.split() for t in targets])
    for score, result in zip(ours, expected):
        assert score.tokens == result.tokens
        assert np.allclose(score.log_probs, result.log_probs, atol=1e-4, rtol=0)
        assert score.log_prob == pytest.approx(sum(result.log_probs), abs=1e-3)
        assert score.normalized == pytest.approx(score.log_prob / len(result.tokens))


def test_scores_match_transformers(marian: Path) -> None:
    torch = pytest.importorskip("torch", reason="transformers runs on torch")
    transformers = pytest.importorskip("transformers", reason="the reference")
    reference = transformers.MarianMTModel.from_pretrained(MARIAN_FIXTURES / "base").eval()
    translator = Translator(marian, threads=1)
    tokenizer = translator.tokenizer
    sources = ["a small test", "hello world again and again"]
    targets = ["the answer", ""]
    scores = translator.score(sources, targets)
    for source, target, score in zip(sources, targets, scores):
        source_ids = tokenizer.encode(source)
        target_ids = tokenizer.target_text_ids(target) if target else []
        decoder_input = [tokenizer.decoder_start_id] + target_ids
        with torch.no_grad():
            logits = reference(input_ids=torch.tensor([source_ids]),
                               decoder_input_ids=torch.tensor([decoder_input])).logits[0]
        log_probs = torch.log_softmax(logits.double(), dim=-1)
        wanted = target_ids + [tokenizer.eos_id]
        expected = log_probs[torch.arange(len(wanted)), torch.tensor(wanted)].numpy()
        assert np.allclose(score.log_probs, expected, atol=1e-4, rtol=0)
        assert score.tokens == tokenizer.target_pieces(wanted)


def test_score_errors(marian: Path) -> None:
    translator = Translator(marian, threads=1)
    assert translator.score([], []) == []
    with pytest.raises(ValueError, match="one target per source"):
        translator.score(["a"], [])
    with pytest.raises(ValueError, match="source 0 is empty"):
        translator.score([" "], ["x"])
    with pytest.raises(ValueError, match="positions"):
        translator.score(["a"], [" ".join(["x"] * 600)])
    with pytest.raises(TypeError):
        translator.score("a", "b")
    assert isinstance(translator.score(["a"], ["b"])[0], Score)


def test_score_command_prints_what_the_api_returns(marian: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from pytransformer.cli.main import app

    sources, targets = ["a small test", "", "hello world"], ["the answer", "x", "again"]
    (tmp_path / "s.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (tmp_path / "t.txt").write_text("\n".join(targets) + "\n", encoding="utf-8")
    arguments = ["score", "--source", str(tmp_path / "s.txt"), "--target",
                 str(tmp_path / "t.txt"), "-m", str(marian), "-t", "1"]
    runner = CliRunner()
    plain = runner.invoke(app, arguments, catch_exceptions=False)
    assert plain.exit_code == 0, plain.output
    expected = Translator(marian, threads=1).score([sources[0], sources[2]],
                                                   [targets[0], targets[2]])
    assert plain.stdout.split("\n")[:3] == [
        f"{expected[0].normalized:.4f}\t{expected[0].log_prob:.4f}", "",
        f"{expected[1].normalized:.4f}\t{expected[1].log_prob:.4f}"]
    lines = runner.invoke(app, arguments + ["--json-lines"], catch_exceptions=False)
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3] and records[1]["log_prob"] is None
    assert records[2]["log_probs"] == pytest.approx(expected[1].log_probs)
    (tmp_path / "t.txt").write_text("only one line\n", encoding="utf-8")
    refused = runner.invoke(app, arguments)
    assert refused.exit_code != 0 and "line-aligned" in refused.output


def test_confidence_is_the_score_of_the_generated_pieces(marian: Path) -> None:
    translator = Translator(marian, threads=1)
    sources = ["a small test", "", "hello world again"]
    translations = translator.translate(sources)
    confidences = translator.confidence(sources, translations)
    assert confidences[1] is None
    for source, translation, confidence in zip(sources, translations, confidences):
        if not source:
            continue
        ids = [translator.tokenizer.target_id(p) for p in translation.tokens]
        logits = translator._model.teacher_forced_logits(
            [translator.tokenizer.encode(source)],
            [[translator.tokenizer.decoder_start_id] + ids])[0].astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        wanted = ids + [translator.tokenizer.eos_id]
        assert confidence == pytest.approx(
            log_probs[np.arange(len(wanted)), wanted].mean(), abs=1e-9)


def test_min_confidence_leaves_low_sentences_untranslated(marian: Path) -> None:
    import json

    from typer.testing import CliRunner

    from pytransformer.cli.main import app

    runner = CliRunner()
    text = "a small test"
    normal = runner.invoke(app, ["translate", "-m", str(marian), text], catch_exceptions=False)
    confidence = Translator(marian, threads=1).confidence(
        [text], Translator(marian, threads=1).translate([text]))[0]
    below = runner.invoke(app, ["translate", "-m", str(marian), "--min-confidence",
                                str(confidence + 0.01), text], catch_exceptions=False)
    assert below.stdout.strip() == text
    assert "line 1: a sentence left untranslated" in below.stderr
    above = runner.invoke(app, ["translate", "-m", str(marian), "--min-confidence",
                                str(confidence - 0.01), text], catch_exceptions=False)
    assert above.stdout == normal.stdout and "untranslated" not in above.stderr
    as_json = runner.invoke(app, ["translate", "-m", str(marian), "--json", "--min-confidence",
                                  "-1000", text], catch_exceptions=False)
    sentence = json.loads(as_json.stdout)["translations"][0]["sentences"][0]
    assert sentence["confidence"] == pytest.approx(confidence)
    assert sentence["untranslated"] is False
