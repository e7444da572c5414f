"""Shortlists built from parallel text (pytransformer.shortlist.build_shortlist,
Translator.shortlist_from_pairs, `pytransformer shortlist`) and the metadata-only rewrite that
stores them (pytransformer.format.rewrite_metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytransformer import Translator, _core
from pytransformer.format import ModelFormatError, read_model, rewrite_metadata
from pytransformer.shortlist import Shortlist, build_shortlist
from tiny_models import write_random_model

W = "\u2581w"  # the tiny models' pieces: "▁w3", "▁w4", ... (ids 3, 4, ...)


def test_counts_by_hand() -> None:
    pairs = [("a b", "x y"), ("a", "x"), ("c", "z y")]
    source = {"a": 3, "b": 4, "c": 5}
    target = {"x": 6, "y": 7, "z": 8}
    built = build_shortlist(pairs, lambda text: [source[w] for w in text.split()] + [1],
                            lambda text: [target[w] for w in text.split()], 6, 9,
                            always=1, best=1)
    # x and y are in two targets each: the lower id, x, is always allowed.
    assert built.always.tolist() == [6]
    lists = [built.targets[built.offsets[s]:built.offsets[s + 1]].tolist() for s in range(6)]
    # a: y (1 pair; x is always allowed); b: y; c: y and z tie at 1, the lower id wins;
    # EOS (1) is in every source: y (2 pairs) before z (1).
    assert lists == [[], [7], [], [7], [7], [7]]
    assert built.allowed_ids([5, 1], 9).tolist()[:3] == [0, 1, 2]  # padding up to 8 ids
    assert {6, 7} <= set(built.allowed_ids([5, 1], 9).tolist())
    again = Shortlist.from_metadata(built.metadata())
    assert again.allowed_ids([3, 1], 9).tolist() == built.allowed_ids([3, 1], 9).tolist()


def test_rewrite_metadata_keeps_every_tensor(tmp_path: Path) -> None:
    path = tmp_path / "int8.ptm"
    write_random_model(path, seed=1, quantize="int8")
    original = _core.ModelFile(str(path))
    metadata = {k: v for k, v in original.metadata.items() if k != "checksum.crc32"}
    metadata["general.name"] = "renamed"
    out = tmp_path / "renamed.ptm"
    rewrite_metadata(path, out, metadata)
    rewritten = _core.ModelFile(str(out))
    assert rewritten.metadata["general.name"] == "renamed"
    assert rewritten.tensor_names() == original.tensor_names()
    for name in original.tensor_names():
        assert rewritten.tensor_info(name) == original.tensor_info(name)
        assert np.array_equal(np.asarray(rewritten.tensor(name, dequantize=False)),
                              np.asarray(original.tensor(name, dequantize=False)))
    # Metadata that does not describe the tensors is refused before the destination is touched.
    metadata["model.d_model"] = 32
    with pytest.raises(ModelFormatError):
        rewrite_metadata(path, out, metadata)
    assert _core.ModelFile(str(out)).metadata["general.name"] == "renamed"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.fixture
def model_with_pairs(tmp_path: Path) -> tuple[Path, Path, Path]:
    path = tmp_path / "model.ptm"
    write_random_model(path, seed=4, source_vocab_size=40, target_vocab_size=40,
                       max_positions=64)
    rng = np.random.default_rng(0)
    sources, targets = [], []
    for _ in range(60):
        words = rng.integers(3, 40, size=4)
        sources.append(" ".join(f"{W}{w}" for w in words))
        targets.append(" ".join(f"{W}{3 + (w * 7) % 37}" for w in words))  # a fixed mapping
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("\n".join(targets) + "\n", encoding="utf-8")
    return path, tmp_path / "src.txt", tmp_path / "tgt.txt"


def test_command_writes_a_model_that_translates_within_its_shortlist(model_with_pairs,
                                                                     tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pytransformer.cli.main import app

    path, source, target = model_with_pairs
    out = tmp_path / "shortlisted.ptm"
    result = CliRunner().invoke(app, ["shortlist", str(out), "--source", str(source),
                                      "--target", str(target), "--always", "2", "--best", "3",
                                      "--json", "-m", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pairs"] == 60 and summary["always"] == 2
    metadata, tensors = read_model(out)
    _, original = read_model(path)
    assert all(np.array_equal(tensors[name], original[name]) for name in original)
    shortlist = Shortlist.from_metadata(metadata)
    with_list, without = Translator(out, threads=1), Translator(out, threads=1, shortlist=False)
    texts = [f"{W}5 {W}9 {W}12", f"{W}30"]
    for text, restricted, full in zip(texts, with_list.translate(texts),
                                      without.translate(texts)):
        ids = with_list.tokenizer.encode(text)
        allowed = set(shortlist.allowed_ids(ids, 40).tolist())
        assert {with_list.tokenizer.target_id(p) for p in restricted.tokens} <= allowed
        assert full.text == Translator(path, threads=1).translate([text])[0].text
    # The flag turns it off in the CLI too.
    plain = CliRunner().invoke(app, ["translate", "--no-shortlist", "-m", str(out), texts[0]],
                               catch_exceptions=False)
    assert plain.stdout.strip() == without.translate([texts[0]])[0].text


def test_command_refuses_misaligned_files(model_with_pairs, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pytransformer.cli.main import app

    path, source, target = model_with_pairs
    target.write_text("one line\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["shortlist", str(tmp_path / "out.ptm"), "--source",
                                      str(source), "--target", str(target), "-m", str(path)])
    assert result.exit_code != 0
    assert "line-aligned" in result.output
    assert not (tmp_path / "out.ptm").exists()
