"""Lexically constrained beam search (generate(..., constraints=...), docs/decoding.md,
*Constraints*) and what the Translator builds on it: glossaries and protected spans
(pytransformer.constraints).

No reference engine implements this search token for token, so the tests check what it
promises: every constraint appears (one of its forms, contiguous) in each returned hypothesis
that ended; sentences without constraints are decoded exactly as without the option; a
sentence's result does not depend on the others of the call; a shortlist does not keep a
constraint out; bad constraints are refused with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import pytransformer
from pytransformer import _core
from pytransformer.constraints import PROTECTED_PATTERNS, Glossary, required_texts
from tiny_models import write_random_model

VOCAB = 200
EOS = 1
SOURCES = [[5, 9, 3, 40, 1], [7, 1], [4, 4, 8, 120, 6, 1], [150, 17, 1]]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> _core.Model:
    path = tmp_path_factory.mktemp("constraints") / "model.ptm"
    write_random_model(path, seed=4, source_vocab_size=VOCAB, target_vocab_size=VOCAB,
                       d_model=32, max_positions=64)
    return _core.Model(str(path), threads=1)


def _holds(tokens: list[int], form: list[int]) -> bool:
    return any(tokens[i:i + len(form)] == form for i in range(len(tokens) - len(form) + 1))


CONSTRAINTS = [
    [[[17, 18]]],                      # one constraint, one form
    [],                                # none: decoded as without constraints
    [[[30]], [[40, 41, 42]]],          # two
    [[[60, 61], [62]]],                # one constraint with two forms
]


@pytest.mark.parametrize("beam", [1, 4])
def test_every_constraint_appears_and_free_sentences_are_untouched(model, beam: int) -> None:
    options = _core.SearchOptions(model, beam_size=beam, n_best=min(beam, 2), max_length=20)
    plain = _core.generate(model, SOURCES, options)
    constrained = _core.generate(model, SOURCES, options, constraints=CONSTRAINTS)
    assert constrained[1] == plain[1]
    for sentence, constraints in enumerate(CONSTRAINTS):
        if not constraints:
            continue
        assert len(constrained[sentence]) == min(beam, 2)
        for tokens, _, _ in constrained[sentence]:
            for forms in constraints:
                assert any(_holds(tokens, form) for form in forms), (tokens, forms)
        # Alone, the same: a result does not depend on the sentences beside it.
        alone = _core.generate(model, [SOURCES[sentence]], options, constraints=[constraints])
        assert alone[0] == constrained[sentence]


def test_a_shortlist_does_not_keep_a_constraint_out(model) -> None:
    options = _core.SearchOptions(model, max_length=16)
    allowed = [list(range(2, 12))]
    [[(tokens, _, _), *_]] = _core.generate(model, [SOURCES[0]], options, allowed_ids=allowed,
                                           constraints=[[[[150, 151]]]])
    assert _holds(tokens, [150, 151])
    assert set(tokens) <= set(range(2, 12)) | {150, 151}


@pytest.mark.parametrize("constraints, message", [
    ([[[[3]]]], "constraints has 1 entries for 2 sentences"),
    ([[[]], []], "a constraint has no form"),
    ([[[[]]], []], "a form of a constraint is empty"),
    ([[[[VOCAB]]], []], "outside the target vocabulary"),
    ([[[[5] * 30]], []], "do not fit max_length"),
    ([[[[0]]], []], "is suppressed"),
])
def test_bad_constraints_are_refused(model, constraints, message: str) -> None:
    options = _core.SearchOptions(model, max_length=20, suppressed_ids=[0])
    with pytest.raises(ValueError, match=message):
        _core.generate(model, SOURCES[:2], options, constraints=constraints)
    with pytest.raises(ValueError, match="sampling"):
        _core.generate(model, SOURCES[:1], _core.SearchOptions(model, sampling=True),
                       constraints=[[[[3]]]])


# ---- glossaries and protected spans -------------------------------------------------------


def test_glossary_files(tmp_path: Path) -> None:
    path = tmp_path / "terms.tsv"
    path.write_text("# comment\n\nmachine learning\t机器学习\nTom\t托马斯\n", encoding="utf-8")
    glossary = Glossary.read(path)
    assert glossary.entries == (("machine learning", "机器学习"), ("Tom", "托马斯"))
    path.write_text("one field only\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: expected 'source term<TAB>target term'"):
        Glossary.read(path)
    with pytest.raises(ValueError, match="non-empty"):
        Glossary.from_mapping({"x": " "})


@pytest.mark.parametrize("text, expected", [
    ("Machine learning is fun; machine learning.", ["机器学习", "机器学习"]),  # capitalised
    ("I met Tom and tomatoes.", ["托马斯"]),           # whole words, as written
    ("I met TOM.", []),                                 # a capitalised term: case kept
    ("我喜欢猫。", ["cat"]),                            # CJK: anywhere
    ("Write to tom@example.com about Tom.", ["tom@example.com", "托马斯"]),  # the e-mail first
])
def test_terms_are_found_as_words_in_source_order(text: str, expected: list[str]) -> None:
    glossary = Glossary.from_mapping({"machine learning": "机器学习", "Tom": "托马斯",
                                      "猫": "cat"})
    assert required_texts(text, glossary, [PROTECTED_PATTERNS["email"]]) == expected


@pytest.mark.parametrize("name, text, spans", [
    ("url", "See https://example.com/a_b?x=1, or www.example.org.",
     ["https://example.com/a_b?x=1", "www.example.org"]),
    ("email", "Mail first.last+tag@mail.example.co.uk now", ["first.last+tag@mail.example.co.uk"]),
    ("placeholder", "Hello {name}, you have %d new %s (${count}, {{user}}).",
     ["{name}", "%d", "%s", "${count}", "{{user}}"]),
    ("number", "It costs 3.50, at 10:30 on 2024-05-01; A4 stays.", ["3.50", "10:30", "2024", "05", "01"]),
])
def test_protected_patterns(name: str, text: str, spans: list[str]) -> None:
    assert required_texts(text, None, [PROTECTED_PATTERNS[name]]) == spans


@pytest.fixture(scope="module")
def default_translator() -> pytransformer.Translator:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTRANSFORMER_MODEL", raising=False)
        return pytransformer.Translator()


def test_translations_carry_glossary_terms_and_protected_spans(default_translator) -> None:
    sources = ["My name is Tom and I live in London.", "The meeting starts at 10:30 tomorrow.",
               "Hello {name}, please read https://example.com/help first.", "我叫汤姆。",
               "Good morning."]
    glossary = {"London": "伦敦城", "汤姆": "Thomas"}
    plain = default_translator.translate(sources)
    kept = default_translator.translate(sources, glossary=glossary, protect=True)
    assert "伦敦城" in kept[0].text
    assert "10:30" in kept[1].text
    assert "{name}" in kept[2].text and "https://example.com/help" in kept[2].text
    assert "Thomas" in kept[3].text
    assert kept[4].text == plain[4].text  # nothing to carry: translated as without
    # A user pattern, and none of this without asking for it.
    assert "Zorblax" in default_translator.translate(["I saw Zorblax today."],
                                                      keep=[r"Zorb\w+"])[0].text
    assert "{name}" not in plain[2].text


def _cli(*args: str):

    # The installed package (or PYTHONPATH's), run outside the source tree, as test_cli.py does.
    env = {key: value for key, value in os.environ.items() if key != "PYTRANSFORMER_MODEL"}
    return subprocess.run([sys.executable, "-m", "pytransformer", "translate", *args],
                          capture_output=True, text=True, env=env, timeout=300,
                          cwd=tempfile.gettempdir())


def test_cli_glossary_keep_and_protect(tmp_path: Path) -> None:
    terms = tmp_path / "terms.tsv"
    terms.write_text("London\t伦敦城\n", encoding="utf-8")
    result = _cli("--glossary", str(terms), "--keep", r"Zorb\w+", "--protect",
                  "I live in London. Zorblax costs 3.50 at https://example.com/x.")
    assert result.returncode == 0, result.stderr
    for carried in ("伦敦城", "Zorblax", "3.50", "https://example.com/x"):
        assert carried in result.stdout
    terms.write_text("London only\n", encoding="utf-8")
    bad = _cli("--glossary", str(terms), "hello")
    assert bad.returncode == 1 and "terms.tsv, line 1: expected" in bad.stderr
    bad = _cli("--keep", "(", "hello")
    assert bad.returncode == 1 and "--keep '(': not a regular expression" in bad.stderr
    missing = _cli("--glossary", str(tmp_path / "none.tsv"), "hello")
    assert missing.returncode == 1 and "cannot read --glossary" in missing.stderr


def test_whole_words_keep_a_constraint_from_being_extended(model) -> None:
    """With whole_words, no id of word_continuations follows a constraint's last token; the
    other sentences of the call are not held to it."""
    options = _core.SearchOptions(model, max_length=16)
    constraint = [[[[198]]], [[[198]]]]  # a token this model repeats: 198 198 198 ...

    def followers(results) -> list[int]:
        return [tokens[i + 1] for tokens, _, _ in results for i, t in enumerate(tokens[:-1])
                if t == 198]

    plain = _core.generate(model, SOURCES[:2], options, constraints=constraint)
    assert any(token % 2 == 0 for token in followers(plain[0]))
    options.word_continuations = list(range(2, VOCAB, 2))  # the even ids "continue words"
    options.whole_words = [1, 0]
    held = _core.generate(model, SOURCES[:2], options, constraints=constraint)
    assert all(198 in tokens for tokens, _, _ in held[0])
    # After the 198 that meets the constraint, an odd id (198s of the model's own may follow
    # an odd one again).
    for tokens, _, _ in held[0]:
        first = tokens.index(198)
        assert first + 1 == len(tokens) or tokens[first + 1] % 2 == 1, tokens
    assert held[1] == plain[1]
    options.whole_words = [1]
    with pytest.raises(ValueError, match="whole_words has 1 entries for 2 sentences"):
        _core.generate(model, SOURCES[:2], options, constraints=constraint)
