"""The `pytransformer` command line through Typer's CliRunner (and real subprocesses where a
process must be interrupted): every command, its --json output, and its error paths.

Expected translations come from the public API (pytransformer.Translator) on the same model:
the CLI must add nothing and lose nothing."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import pytransformer
from cli_models import PATIENCE_SECONDS, write_endless_model
from conftest import AREN_MODEL, MARIAN_FIXTURES
from cuda_support import GPU_PROBLEM, cuda, needs_gpu
from pytransformer.cli.main import app
from pytransformer.cli.text import join_sentences

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user data directory (models, history)."""
    data = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("PYTRANSFORMER_DEBUG", raising=False)
    monkeypatch.delenv("PYTRANSFORMER_MODEL", raising=False)
    return data


def invoke(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# ---- translate ------------------------------------------------------------------------------


def test_translate_text_argument_matches_the_api(marian: Path) -> None:
    expected = pytransformer.Translator(marian).translate(["Hello world."])[0].text
    result = invoke("translate", "--model", str(marian), "Hello", "world.")
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"
    assert result.stderr == ""


def test_stdin_one_line_per_line_empty_lines_kept_sentences_split(marian: Path) -> None:
    translator = pytransformer.Translator(marian)
    text = "Good morning.\n\nThe cat sleeps. The dog barks! Birds sing?\n   \nlast line"
    result = invoke("translate", "-m", str(marian), input=text)
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 5
    sentences = ["The cat sleeps.", "The dog barks!", "Birds sing?"]
    assert lines[0] == translator.translate(["Good morning."])[0].text
    assert lines[1] == "" and lines[3] == ""
    assert lines[2] == join_sentences([t.text for t in translator.translate(sentences)])
    assert lines[4] == translator.translate(["last line"])[0].text


def test_file_to_atomic_output_file(marian: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("One.\nTwo three.\n", encoding="utf-8")
    output = tmp_path / "out.txt"
    output.write_text("old content\n")
    result = invoke("translate", "-m", str(marian), "--file", str(source), "-o", str(output))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the translation went to the file only
    on_stdout = invoke("translate", "-m", str(marian), "--file", str(source)).stdout
    assert output.read_text(encoding="utf-8") == on_stdout
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "out.txt"]  # no temporary file left


def test_search_options_reach_the_translator(marian: Path) -> None:
    translator = pytransformer.Translator(marian)
    expected = translator.translate(["Hello there."], beam_size=3, n_best=2, max_length=5)[0]
    result = invoke("translate", "-m", str(marian), "--beam", "3", "--n-best", "2",
                    "--max-length", "5", "Hello there.")
    assert result.exit_code == 0, result.output
    assert result.stdout == "\t".join(h.text for h in expected.hypotheses) + "\n"
    greedy = translator.translate(["Hello there."], beam_size=1)[0].text
    assert invoke("translate", "-m", str(marian), "-b", "1", "Hello there.").stdout == \
        greedy + "\n"


def test_json_has_translations_scores_and_timings(marian: Path) -> None:
    translator = pytransformer.Translator(marian)
    result = invoke("translate", "-m", str(marian), "--json", "--n-best", "2",
                    input="First one. Second one.\n\nThird.\n")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["model"] == str(marian)
    records = document["translations"]
    assert [r["source"] for r in records] == ["First one. Second one.", "", "Third."]
    # n-best 2 within the model's default beam (4 for this fixture)
    assert translator.metadata["generation.beam_size"] == 4
    first = translator.translate(["First one.", "Second one."], n_best=2, return_scores=True)
    sentences = records[0]["sentences"]
    assert [s["source"] for s in sentences] == ["First one.", "Second one."]
    for sentence, expected in zip(sentences, first):
        assert sentence["hypotheses"] == [h.text for h in expected.hypotheses]
        assert sentence["scores"] == pytest.approx([h.score for h in expected.hypotheses])
    assert records[0]["translation"] == join_sentences([t.text for t in first])
    assert records[1] == {"source": "", "translation": "", "hypotheses": ["", ""],
                          "sentences": []}
    timings = document["timings"]
    assert timings["lines"] == 3 and timings["sentences"] == 3
    assert timings["translate_seconds"] > 0 and timings["load_seconds"] > 0
    assert timings["tokens"] == sum(len(t.tokens) for t in first) + len(
        translator.translate(["Third."], n_best=2)[0].tokens)


def test_two_language_model_detects_the_script(bidirectional: Path) -> None:
    translator = pytransformer.Translator(bidirectional)
    latin, han = "▁w3 ▁w4", "你 好"

    def api(text: str, language: str) -> str:
        return translator.translate([text], target_language=language)[0].text

    # The test means something only if the direction changes the output.
    assert api(latin, "zh") != api(latin, "en") and api(han, "en") != api(han, "zh")
    result = invoke("translate", "-m", str(bidirectional), input=f"{latin}\n{han}\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{api(latin, 'zh')}\n{api(han, 'en')}\n"
    forced = invoke("translate", "-m", str(bidirectional), "--to", "en", input=f"{han}\n")
    assert forced.stdout == api(han, "en") + "\n" and forced.stderr == ""
    from_zh = invoke("translate", "-m", str(bidirectional), "--from", "zh", latin)
    assert from_zh.stdout == api(latin, "en") + "\n"
    three_letter = invoke("translate", "-m", str(bidirectional), "--to", "zho", latin)
    assert three_letter.stdout == api(latin, "zh") + "\n"


def test_unknown_language_is_a_one_line_error(bidirectional: Path) -> None:
    assert_one_line_error(invoke("translate", "-m", str(bidirectional), "--to", "de", "▁w3"),
                          "unknown target language 'de'", "en, zh")
    assert_one_line_error(invoke("translate", "-m", str(bidirectional), "--from", "fr", "▁w3"),
                          "unknown source language 'fr'")


def test_model_errors_are_one_line(tmp_path: Path, marian: Path) -> None:
    assert_one_line_error(invoke("translate", "-m", "no-such-model", "hi"),
                          "unknown model 'no-such-model'")
    assert_one_line_error(invoke("translate", "-m", str(MARIAN_FIXTURES / "base"), "hi"),
                          "is a directory", "pytransformer convert")
    corrupt = tmp_path / "corrupt.ptm"
    corrupt.write_bytes(marian.read_bytes()[:1000])
    assert_one_line_error(invoke("translate", "-m", str(corrupt), "hi"),
                          "invalid model file", "corrupt.ptm")
    garbage = tmp_path / "[bold]garbage.ptm"  # printed as is, not as Rich markup
    garbage.write_bytes(b"not a model at all")
    assert_one_line_error(invoke("translate", "-m", str(garbage), "hi"), "invalid model file",
                          "[bold]garbage.ptm")


def test_input_errors_are_one_line(tmp_path: Path, marian: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("fine\ncaf\xe9 au lait\n".encode("latin-1"))
    assert_one_line_error(invoke("translate", "-m", str(marian), "-f", str(bad)),
                          "latin1.txt: invalid UTF-8 on line 2 (byte 0xe9)")
    assert_one_line_error(invoke("translate", "-m", str(marian), input=b"ok\n\xff\xfe\n"),
                          "stdin: invalid UTF-8 on line 2")
    assert_one_line_error(invoke("translate", "-m", str(marian), "-f", str(tmp_path / "nope")),
                          "no such file")
    assert_one_line_error(invoke("translate", "-m", str(marian), "-f", str(bad), "text"),
                          "not both")
    out = tmp_path / "missing-dir" / "out.txt"
    assert_one_line_error(invoke("translate", "-m", str(marian), "-o", str(out), "hi"),
                          "missing-dir")


def test_errors_replace_or_skip_translates_the_other_lines_and_names_the_bad_ones(
        tmp_path: Path, marian: Path) -> None:
    bad = tmp_path / "mixed.txt"
    bad.write_bytes(b"Hello.\ncaf\xe9 au lait\nThank you.\n\xff\n")
    translator = pytransformer.Translator(marian)
    hello, thanks, replaced = (t.text for t in translator.translate(
        ["Hello.", "Thank you.", "caf\ufffd au lait"]))
    skipped = invoke("translate", "-m", str(marian), "-f", str(bad), "--errors", "skip")
    assert skipped.exit_code == 0, skipped.output
    assert skipped.stdout.split("\n") == [hello, "", thanks, "", ""]  # aligned: 4 lines
    assert "mixed.txt: invalid UTF-8 on lines 2, 4 (left untranslated" in skipped.stderr
    replacing = invoke("translate", "-m", str(marian), "-f", str(bad), "--errors", "replace")
    assert replacing.exit_code == 0, replacing.output
    assert replacing.stdout.split("\n")[:3] == [hello, replaced, thanks]
    assert "mixed.txt: invalid UTF-8 on lines 2, 4 (bad bytes replaced" in replacing.stderr
    strict = invoke("translate", "-m", str(marian), "-f", str(bad))
    assert_one_line_error(strict, "mixed.txt: invalid UTF-8 on line 2 (byte 0xe9)",
                          "--errors replace or skip")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.ptm"
    garbage.write_bytes(b"not a model at all")
    result = invoke("--debug", "translate", "-m", str(garbage), "hi")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "error: invalid model file" in result.stderr


def test_warnings_are_one_line(marian: Path) -> None:
    # One segment (249 bytes, within the CLI's limit), over the fixture's 64 positions.
    long_line = " ".join(["word"] * 50)
    with pytest.warns(UserWarning, match="truncated"):
        expected = pytransformer.Translator(marian).translate([long_line])[0].text
    result = invoke("translate", "-m", str(marian), long_line)
    assert result.exit_code == 0
    assert result.stdout == expected + "\n"
    [warning] = result.stderr.splitlines()
    assert warning.startswith("warning: input of ") and warning.endswith("truncated")


def test_empty_input_gives_empty_output(marian: Path) -> None:
    result = invoke("translate", "-m", str(marian), input="")
    assert result.exit_code == 0 and result.stdout == ""


@pytest.mark.parametrize("arguments", [[""], ["   "], ["", ""], ["\t"]])
def test_an_empty_or_blank_argument_is_one_empty_line(marian: Path,
                                                      arguments: list[str]) -> None:
    """One rule for TEXT: it is at least one line, and a line without text gives an empty
    line (as an empty input line does), so the output stays aligned with the input."""
    result = invoke("translate", "-m", str(marian), *arguments)
    assert result.exit_code == 0, result.output
    assert result.stdout == "\n" and result.stderr == ""
    document = json.loads(invoke("translate", "-m", str(marian), "--json", *arguments).stdout)
    assert [r["translation"] for r in document["translations"]] == [""]


def test_text_already_in_the_forced_language_is_copied_with_a_warning(
        bidirectional: Path) -> None:
    translator = pytransformer.Translator(bidirectional)
    latin, han = "▁w3 ▁w4", "你 好"
    result = invoke("translate", "-m", str(bidirectional), "--to", "zh", han)
    assert result.exit_code == 0, result.output
    assert result.stdout == han + "\n"  # not the model's zh -> zh output
    assert translator.translate([han], target_language="zh")[0].text != han
    assert result.stderr == "warning: text already in zh (by its script), the language --to " \
                            "asks for, is copied unchanged\n"
    # lines: named by number; the others are translated as asked
    lines = invoke("translate", "-m", str(bidirectional), "--to", "en",
                   input=f"{han}\n{latin}\n\n{latin}\n")
    expected = translator.translate([han], target_language="en")[0].text
    assert lines.stdout == f"{expected}\n{latin}\n\n{latin}\n"
    assert lines.stderr == "warning: text already in en (by its script), the language --to " \
                           "asks for, is copied unchanged (lines 2 and 4)\n"
    record = json.loads(invoke("translate", "-m", str(bidirectional), "--to", "zh", "--json",
                               han).stdout)["translations"][0]
    assert record["translation"] == han
    assert record["sentences"] == [{"source": han, "target_language": ">>zh<<",
                                    "hypotheses": [han], "scores": [None],
                                    "detected_language": {"language": "zh",
                                                          "probability": 0.9651}}]
    # the same language given to --from and --to is an error
    assert_one_line_error(invoke("translate", "-m", str(bidirectional), "--from", "zho",
                                 "--to", "zh", han), "--from and --to are the same language")


def test_text_in_letters_the_model_does_not_know_is_warned_about(bidirectional: Path,
                                                                 marian: Path) -> None:
    arabic = "م ر ح ب ا"  # the en<->zh test model's vocabulary has none of these letters
    expected = pytransformer.Translator(bidirectional).translate([arabic],
                                                                 target_language="zh")[0].text
    result = invoke("translate", "-m", str(bidirectional), arabic)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"  # translated all the same, but the user is told
    assert result.stderr == "warning: the text is mostly in letters this model does not " \
                            "know (e.g. 'م'): expect a meaningless translation\n"
    many = invoke("translate", "-m", str(marian), input="Hello.\n" + "Привет.\n" * 7)
    assert many.stderr == "warning: lines 2, 3, 4, 5, 6, ... (7 in all) are mostly in " \
                          "letters this model does not know (e.g. 'П'): expect a meaningless " \
                          "translation\n"
    # a few unknown letters are not a different script
    assert invoke("translate", "-m", str(marian), "Café crème, señor.").stderr == ""


def test_max_length_beyond_the_model_is_refused_at_once(marian: Path) -> None:
    limit = pytransformer.Translator(marian).max_positions
    for command in ("translate", "explain"):
        assert_one_line_error(invoke(command, "-m", str(marian), "--max-length",
                                     str(limit + 1), "Hello."),
                              f"--max-length {limit + 1}: this model generates at most "
                              f"{limit} tokens per sentence")
    assert invoke("translate", "-m", str(marian), "--max-length", str(limit),
                  "Hello.").exit_code == 0


def test_missing_default_model_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # A build without weights/model.ptm installs no default model.
    monkeypatch.setattr(pytransformer, "default_model_path", lambda: None)
    assert_one_line_error(invoke("translate", "hi"), "default model is not installed",
                          "PYTRANSFORMER_MODEL")


def test_default_model_variable_naming_no_model_is_reported(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTRANSFORMER_MODEL", str(tmp_path / "absent.ptm"))
    assert_one_line_error(invoke("translate", "hi"), "$PYTRANSFORMER_MODEL", "absent.ptm")


def test_default_model_named_by_the_environment(marian: Path, isolated_data_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    expected = pytransformer.Translator(marian).translate(["Hi."])[0].text
    monkeypatch.setenv("PYTRANSFORMER_MODEL", str(marian))
    assert invoke("translate", "Hi.").stdout == expected + "\n"
    [default] = json.loads(invoke("models", "--json").stdout)["models"]
    assert default["origin"] == "default" and default["path"] == str(marian)
    # a name in the user models directory works as for --model
    models_dir = isolated_data_dir / "pytransformer" / "models"
    models_dir.mkdir(parents=True)
    shutil.copy(marian, models_dir / "mine.ptm")
    monkeypatch.setenv("PYTRANSFORMER_MODEL", "mine")
    assert invoke("translate", "Hi.").stdout == expected + "\n"
    monkeypatch.setenv("PYTRANSFORMER_MODEL", "no-such-model")
    assert_one_line_error(invoke("translate", "Hi."), "$PYTRANSFORMER_MODEL",
                          "unknown model 'no-such-model'")
    listed = json.loads(invoke("models", "--json").stdout)["models"]
    default = next(entry for entry in listed if entry["origin"] == "default")
    assert "no-such-model" in default["error"]


def test_models_in_the_user_directory_are_found_by_name(marian: Path,
                                                          isolated_data_dir: Path) -> None:
    models_dir = isolated_data_dir / "pytransformer" / "models"
    models_dir.mkdir(parents=True)
    shutil.copy(marian, models_dir / "mine.ptm")
    expected = pytransformer.Translator(marian).translate(["Hi."])[0].text
    assert invoke("translate", "-m", "mine", "Hi.").stdout == expected + "\n"
    assert invoke("translate", "-m", "mine.ptm", "Hi.").stdout == expected + "\n"


def test_progress_bar_on_a_terminal_stdout_stays_clean(tmp_path: Path) -> None:
    """stderr on a pseudo-terminal shows the progress bar; stdout (redirected to a file)
    receives the translations only."""
    import pexpect

    endless = write_endless_model(tmp_path / "endless.ptm", max_length=300)
    lines = [f"▁w{3 + i} ▁w4" for i in range(20)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    command = " ".join(_cli("translate", "-m", str(endless), "-f", "in.txt", "--max-length",
                            "60")) + " > out.txt"
    child = pexpect.spawn("/bin/sh", ["-c", command], cwd=str(tmp_path), encoding="utf-8",
                          dimensions=(24, 120), timeout=PATIENCE_SECONDS)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "translating" in child.before and "sentences" in child.before
    expected = pytransformer.Translator(endless).translate(lines, max_length=60)
    assert (tmp_path / "out.txt").read_text() == "".join(t.text + "\n" for t in expected)


# ---- explain --------------------------------------------------------------------------------


def test_explain_draws_the_attention_of_the_translation(marian: Path) -> None:
    translator = pytransformer.Translator(marian)
    attention = translator.attention("Hello world.")
    assert attention.text == translator.translate(["Hello world."])[0].text
    result = invoke("explain", "-m", str(marian), "Hello", "world.")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == attention.text
    assert lines[1] == "cross-attention, layer 2 of 2, mean of the 4 heads"
    assert lines[2].split() == attention.source_pieces  # short pieces: columns named
    rows = lines[3:3 + len(attention.target_pieces)]
    assert [row.split()[0] for row in rows] == attention.target_pieces
    assert lines[3 + len(attention.target_pieces)].startswith("shading relative to")


@pytest.mark.parametrize("layer, head", [(None, None), ("1", "3"), ("all", None),
                                         ("all", "2"), ("2", "all")])
def test_explain_json_weights(marian: Path, layer: str | None, head: str | None) -> None:
    attention = pytransformer.Translator(marian).attention("The cat sleeps.", beam_size=2)
    args = ["explain", "-m", str(marian), "--beam", "2", "--json", "The cat sleeps."]
    if layer is not None:
        args += ["--layer", layer]
    if head is not None:
        args += ["--head", head]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["translation"] == attention.text
    assert document["source_pieces"] == attention.source_pieces
    assert document["target_pieces"] == attention.target_pieces
    assert document["shape"] == list(attention.weights.shape)
    weights = np.array(document["weights"])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    by_layer = (attention.weights.mean(axis=0) if layer == "all"
                else attention.weights[int(layer or 2) - 1])
    expected = by_layer.mean(axis=0) if head in (None, "all") else by_layer[int(head) - 1]
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    assert document["layer"] == (2 if layer is None else layer if layer == "all"
                                 else int(layer))
    assert document["head"] == ("all" if head in (None, "all") else int(head))


def test_explain_errors_are_one_line(marian: Path, bidirectional: Path) -> None:
    assert_one_line_error(invoke("explain", "-m", str(marian), "--layer", "3", "Hi."),
                          "--layer 3", "2 decoder layers")
    assert_one_line_error(invoke("explain", "-m", str(marian), "--layer", "0", "Hi."),
                          "--layer 0")
    assert_one_line_error(invoke("explain", "-m", str(marian), "--head", "5", "Hi."),
                          "--head 5", "4 heads")
    assert_one_line_error(invoke("explain", "-m", str(marian), "--head", "first", "Hi."),
                          "--head first")
    assert_one_line_error(invoke("explain", "-m", str(marian), " "), "no text to explain")
    assert_one_line_error(invoke("explain", "-m", str(bidirectional), "--to", "de", "▁w3"),
                          "unknown target language 'de'")
    assert invoke("explain", "-m", str(marian)).exit_code == 2  # TEXT is required


def test_explain_follows_the_target_language(bidirectional: Path) -> None:
    translator = pytransformer.Translator(bidirectional)
    han = "你 好"
    expected = translator.attention(han, target_language="en")
    document = json.loads(invoke("explain", "-m", str(bidirectional), "--json", han).stdout)
    assert document["target_language"] == ">>en<<"
    assert document["source_pieces"] == expected.source_pieces
    assert document["source_pieces"][0] == ">>en<<"
    assert document["target_pieces"] == expected.target_pieces


# ---- --device -------------------------------------------------------------------------------


def test_device_cpu_is_the_default(marian: Path) -> None:
    plain = invoke("translate", "-m", str(marian), "--json", "Hello world.")
    on_cpu = invoke("translate", "-m", str(marian), "--device", "cpu", "--json", "Hello world.")
    assert plain.exit_code == on_cpu.exit_code == 0, on_cpu.output
    documents = [json.loads(result.stdout) for result in (plain, on_cpu)]
    assert documents[0]["device"] == documents[1]["device"] == "cpu"
    assert documents[0]["translations"] == documents[1]["translations"]


@pytest.mark.parametrize("command", ["translate", "explain", "chat"])
def test_a_gpu_that_cannot_be_used_is_a_one_line_error(marian: Path, command: str) -> None:
    # cuda:99 exists nowhere: the same error with or without the CUDA backend or a GPU.
    text = ["Hello."] if command != "chat" else []
    result = runner.invoke(app, [command, "-m", str(marian), "--device", "cuda:99", *text],
                           input="Hello.\n", catch_exceptions=False)
    assert_one_line_error(result, "CUDA requested but")


@pytest.mark.skipif(not GPU_PROBLEM, reason="a usable GPU is present: --device cuda works here")
def test_device_cuda_without_a_gpu_is_a_one_line_error(marian: Path, tmp_path: Path) -> None:
    # A real process: the message and the exit status the user sees, without a traceback.
    completed = subprocess.run(_cli("translate", "-m", str(marian), "--device", "cuda", "Hi."),
                               capture_output=True, text=True, cwd=tmp_path,
                               timeout=PATIENCE_SECONDS)
    assert completed.returncode == 1 and completed.stdout == ""
    [line] = completed.stderr.strip().splitlines()
    assert line.startswith("error: CUDA requested but ")
    if cuda is not None:  # the backend's own reason
        assert line == f"error: {cuda.device_problem(0)}"


def test_a_malformed_device_is_a_one_line_error(marian: Path) -> None:
    assert_one_line_error(invoke("translate", "-m", str(marian), "--device", "gpu", "Hello."),
                          "device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'")


@needs_gpu
def test_device_cuda_translates_as_the_cpu(marian: Path) -> None:
    arguments = ["translate", "-m", str(marian), "--beam", "4", "--n-best", "2", "--json",
                 "Hello world.", "The cat sleeps."]
    on_cpu = json.loads(invoke(*arguments).stdout)
    on_gpu = json.loads(invoke(*arguments, "--device", "cuda").stdout)
    assert on_gpu["device"] == "cuda:0"
    for expected, got in zip(on_cpu["translations"], on_gpu["translations"], strict=True):
        assert got["hypotheses"] == expected["hypotheses"]


# ---- interrupted output ---------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    """`python -m pytransformer ARGS` (run it with a cwd outside the source tree)."""
    return [sys.executable, "-m", "pytransformer", *args]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_output_leaves_no_file(tmp_path: Path, how: signal.Signals) -> None:
    """Input from stdin (a --file run into a file keeps OUT.partial to resume from instead:
    test_cli_corpus.py)."""
    endless = write_endless_model(tmp_path / "endless.ptm", max_length=3000)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(f"▁w{3 + i % 20} ▁w4" for i in range(40)) + "\n")
    output = tmp_path / "out.txt"
    with open(source, "rb") as stdin:
        process = subprocess.Popen(_cli("translate", "-m", str(endless), "-o", str(output)),
                                   stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   cwd=tmp_path)
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not any(name.endswith(".partial") for name in os.listdir(tmp_path)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # well into the translation (the whole run takes far longer)
    assert process.poll() is None
    process.send_signal(how)
    _, stderr = process.communicate(timeout=PATIENCE_SECONDS)
    assert not output.exists()
    if how == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL  # no chance to clean up, but no out.txt
        [stale] = [name for name in os.listdir(tmp_path) if name.endswith(".partial")]
        assert stale.startswith(f".out.txt.{process.pid}.")
        # The next run writing out.txt removes what the killed one left (its process is gone).
        source.write_text("▁w3 ▁w4\n")
        rerun = subprocess.run(_cli("translate", "-m", str(endless), "-f", str(source), "-o",
                                    str(output), "--max-length", "3"),
                               capture_output=True, timeout=PATIENCE_SECONDS, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        assert sorted(os.listdir(tmp_path)) == ["endless.ptm", "in.txt", "out.txt"]
    else:
        # 128 + the signal: 130 for Ctrl-C (SIGINT), 143 for SIGTERM
        assert process.returncode == 128 + how, stderr
        assert b"Traceback" not in stderr
        assert sorted(os.listdir(tmp_path)) == ["endless.ptm", "in.txt"]  # temp file removed


# ---- convert --------------------------------------------------------------------------------


def test_convert_marian_matches_the_api_converter(tmp_path: Path) -> None:
    output = tmp_path / "base.ptm"
    result = invoke("convert", str(MARIAN_FIXTURES / "base"), str(output))
    assert result.exit_code == 0, result.output
    assert "converted" in result.stdout and "marian" in result.stdout
    reference = pytransformer.convert_marian(MARIAN_FIXTURES / "base", tmp_path / "ref.ptm")
    ours, theirs = pytransformer.Translator(output), pytransformer.Translator(reference)
    text = ["A short test sentence."]
    assert ours.translate(text)[0].text == theirs.translate(text)[0].text
    assert ours.metadata["model.d_model"] == theirs.metadata["model.d_model"]


@pytest.mark.parametrize("quantize", ["int8", "f16"])
def test_convert_quantized_json_summary(tmp_path: Path, quantize: str) -> None:
    output = tmp_path / f"{quantize}.ptm"
    result = invoke("convert", str(MARIAN_FIXTURES / "base"), str(output), "--quantize",
                    quantize, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["path"] == str(output)
    assert summary["size_bytes"] == output.stat().st_size
    assert summary["converted_from"] == "marian"
    assert summary["stored_as"].startswith(quantize)
    assert summary["d_model"] == 32 and summary["vocab_sizes"] == [263, 263]
    f32_size = (tmp_path / "f32.ptm")
    pytransformer.convert_marian(MARIAN_FIXTURES / "base", f32_size)
    assert output.stat().st_size < f32_size.stat().st_size


def test_convert_defaults_to_the_user_models_directory(isolated_data_dir: Path) -> None:
    result = invoke("convert", str(MARIAN_FIXTURES / "relu"))
    assert result.exit_code == 0, result.output
    written = isolated_data_dir / "pytransformer" / "models" / "relu.ptm"
    assert written.is_file()
    again = invoke("convert", str(MARIAN_FIXTURES / "relu"))
    assert_one_line_error(again, "exists", "--force")
    assert invoke("convert", str(MARIAN_FIXTURES / "relu"), "--force").exit_code == 0


@pytest.mark.skipif(not AREN_MODEL.is_dir(), reason="peer model not available")
def test_convert_ctranslate2_and_argos_layouts(tmp_path: Path) -> None:
    plain = tmp_path / "aren.ptm"
    result = invoke("convert", str(AREN_MODEL), str(plain), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["converted_from"] == "ctranslate2"
    reference = pytransformer.convert_ctranslate2(AREN_MODEL, tmp_path / "ref.ptm")
    source = "م ر ح ب ا"
    expected = pytransformer.Translator(reference).translate([source])[0].text
    assert pytransformer.Translator(plain).translate([source])[0].text == expected
    # argos-translate: the CTranslate2 model in model/, as a directory and zipped.
    package = tmp_path / "translate-ar_en-1_0"
    shutil.copytree(AREN_MODEL, package / "model")
    (package / "metadata.json").write_text('{"from_code": "ar", "to_code": "en"}')
    archive = tmp_path / "translate-ar_en-1_0.argosmodel"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in package.rglob("*"):
            bundle.write(path, path.relative_to(tmp_path))
    for source_path, name in ((package, "argos-dir.ptm"), (archive, "argos-zip.ptm")):
        result = invoke("convert", str(source_path), str(tmp_path / name))
        assert result.exit_code == 0, result.output
        translated = pytransformer.Translator(tmp_path / name).translate([source])[0].text
        assert translated == expected


def test_convert_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(invoke("convert", str(tmp_path / "nope"), str(tmp_path / "o.ptm")),
                          "no such file or directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(invoke("convert", str(empty), str(tmp_path / "o.ptm")),
                          "not a Marian")
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    assert_one_line_error(invoke("convert", str(other), str(tmp_path / "o.ptm")),
                          "model_type 'bert'")
    broken = tmp_path / "broken"
    shutil.copytree(MARIAN_FIXTURES / "base", broken)
    (broken / "vocab.json").unlink()
    assert_one_line_error(invoke("convert", str(broken), str(tmp_path / "o.ptm")),
                          "cannot convert", "vocab.json")
    not_zip = tmp_path / "fake.argosmodel"
    not_zip.write_bytes(b"not a zip")
    assert_one_line_error(invoke("convert", str(not_zip), str(tmp_path / "o.ptm")),
                          "not a directory, nor an .argosmodel")
    assert not (tmp_path / "o.ptm").exists()
    unknown = invoke("convert", str(empty), str(tmp_path / "o.ptm"), "--quantize", "int4")
    assert unknown.exit_code == 2  # a usage error, reported by Typer


def test_convert_language_models_by_their_detected_format(tmp_path):
    stories = Path(__file__).resolve().parents[3] / "shared" / "peer-models" / \
        "llama2c-stories260K"
    if not stories.is_dir():
        pytest.skip(f"{stories} is not here")
    result = invoke("convert", str(stories / "stories260K.bin"), str(tmp_path / "s.ptm"),
                    "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["converted_from"] == "llama2c" and summary["architecture"] == "llama"
    assert summary["context"] == 512 and summary["heads"] == [8, 4]
    shown = invoke("convert", str(stories / "stories260K.bin"), str(tmp_path / "t.ptm"))
    assert "language model: d_model 64, 5 layers, 8 heads (4 K/V)" in shown.stdout
    fake = tmp_path / "fake.bin"
    fake.write_bytes(b"\0" * 40)
    assert_one_line_error(invoke("convert", str(fake), str(tmp_path / "o.ptm")),
                          "not a llama2.c (version 0) checkpoint")


# ---- models / info --------------------------------------------------------------------------


def test_models_lists_user_models_with_languages(isolated_data_dir: Path, marian: Path,
                                                bidirectional: Path) -> None:
    models_dir = isolated_data_dir / "pytransformer" / "models"
    models_dir.mkdir(parents=True)
    shutil.copy(marian, models_dir / "opus-mt-en-de.ptm")
    shutil.copy(bidirectional, models_dir / "bi.ptm")
    (models_dir / "broken.ptm").write_bytes(b"nonsense")
    (models_dir / "notes.txt").write_text("not a model")
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["models_dir"] == str(models_dir)
    by_name = {Path(entry["path"]).name: entry for entry in document["models"]
               if entry["origin"] == "user"}
    assert sorted(by_name) == ["bi.ptm", "broken.ptm", "opus-mt-en-de.ptm"]
    assert by_name["bi.ptm"]["target_languages"] == ["en", "zh"]
    assert by_name["bi.ptm"]["size_bytes"] == bidirectional.stat().st_size
    assert by_name["opus-mt-en-de.ptm"]["tokenizer"] == "sentencepiece"
    expected_dtypes = pytransformer.Translator(marian).tensor_dtypes
    assert by_name["opus-mt-en-de.ptm"]["dtypes"] == expected_dtypes
    assert by_name["bi.ptm"]["dtypes"] == {"f32": sum(
        pytransformer.describe_model(bidirectional).tensor_dtypes.values())}
    assert "invalid model file" in by_name["broken.ptm"]["error"]
    table = invoke("models")
    assert table.exit_code == 0
    assert "en ↔ zh" in table.stdout and "unreadable" in table.stdout
    assert "f32 ×" in table.stdout


def test_info_reports_the_system(isolated_data_dir: Path) -> None:
    result = invoke("info", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["system"] == json.loads(json.dumps(pytransformer.info()))
    assert invoke("info").stdout.count(pytransformer.info()["version"]) >= 1


# ---- bench ----------------------------------------------------------------------------------


def test_bench_reports_a_tiny_random_model(tmp_path: Path) -> None:
    result = invoke("bench", "--random", "tiny", "--runs", "1", "--workloads", "greedy",
                    "--precision", "float32", "--greedy-length", "4", "--cache-dir",
                    str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["random_shape"] == "tiny"
    assert report["settings"]["greedy_length"] == 4
    assert report["command"].startswith("pytransformer")
    [engine] = report["results"]
    assert engine["engine"] == "pytransformer"
    assert_one_line_error(invoke("bench", str(tmp_path), "--random", "tiny"),
                          "give either a model path or a random model shape")
    assert_one_line_error(invoke("bench", "--random", "tiny", "--compare", "foo"),
                          "unknown engine foo")
    assert_one_line_error(invoke("bench", "no-such-model"), "unknown model 'no-such-model'")
    saved = tmp_path / "report.json"
    saved.write_text(result.stdout)
    shown = invoke("bench", "--show", str(saved), "--markdown")
    assert shown.exit_code == 0 and "| engine | load s |" in shown.stdout, shown.output
    saved.write_text("{}")
    assert_one_line_error(invoke("bench", "--show", str(saved)), "not a report saved by")


def test_bench_measures_the_default_model_or_one_named_as_for_model(
        marian: Path, isolated_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quick = ["--runs", "1", "--workloads", "greedy", "--greedy-length", "2", "--json"]
    monkeypatch.setenv("PYTRANSFORMER_MODEL", str(marian))
    result = invoke("bench", *quick)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["model"] == str(marian)
    monkeypatch.delenv("PYTRANSFORMER_MODEL")
    models_dir = isolated_data_dir / "pytransformer" / "models"
    models_dir.mkdir(parents=True)
    shutil.copy(marian, models_dir / "mine.ptm")
    result = invoke("bench", "mine", *quick)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["model"] == str(models_dir / "mine.ptm")


def test_bench_writes_a_random_model(tmp_path: Path) -> None:
    result = invoke("bench", "--random", "tiny", "--seed", "3", "--make-model",
                    str(tmp_path / "tiny"))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "tiny")
    config = json.loads((tmp_path / "tiny" / "config.json").read_text())
    assert config["d_model"] == pytransformer.bench.TINY_SHAPE.d_model


# ---- the program itself ---------------------------------------------------------------------


def test_python_dash_m_and_help(marian: Path, tmp_path: Path) -> None:
    # (run outside the source tree, whose pytransformer/ has no compiled core)
    completed = subprocess.run(_cli("--help"), capture_output=True, text=True,
                               timeout=PATIENCE_SECONDS, cwd=tmp_path)
    assert completed.returncode == 0
    for command in ("translate", "chat", "explain", "convert", "models", "info", "bench"):
        assert command in completed.stdout
    translated = subprocess.run(_cli("translate", "-m", str(marian), "Hello."),
                                capture_output=True, text=True, cwd=tmp_path,
                                timeout=PATIENCE_SECONDS)
    expected = pytransformer.Translator(marian).translate(["Hello."])[0].text
    assert translated.returncode == 0 and translated.stdout == expected + "\n"
    assert invoke("--version").stdout.strip() == f"pytransformer {pytransformer.__version__}"
    # The version the build writes (pytransformer/_version.py) is the installed distribution's.
    assert pytransformer.__version__ == importlib.metadata.version("pytransformer")


def test_docs_cover_every_command_and_option() -> None:
    """docs/cli.md documents each command with an example and names each of its options."""
    import typer.main

    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    group = typer.main.get_command(app)
    missing = []
    for name, command in group.commands.items():
        assert f"## {name}" in docs or f"## models and {name}" in docs, name
        assert f"pytransformer {name}" in docs, name
        for parameter in command.params:
            for option in getattr(parameter, "opts", []) + getattr(parameter,
                                                                   "secondary_opts", []):
                if option.startswith("--") and option != "--help" and option not in docs:
                    missing.append(f"{name} {option}")
    assert missing == []


def test_usage_errors_exit_2() -> None:
    result = runner.invoke(app, ["translate", "--beam", "0", "x"])
    assert result.exit_code == 2
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2


def test_translating_loads_no_converter_and_no_numpy(tmp_path: Path, marian: Path) -> None:
    """A cold `translate` imports neither the converters (a tenth of a second of start-up,
    issue 17), nor numpy (~0.15 s here: it is imported where it is used), nor the modules of
    the other commands (the bench, the chat REPL: main() registers only the command invoked);
    checked on what is imported, not on a clock (`python -X importtime -m pytransformer
    translate hello` shows the costs). `pytransformer.convert_marian` still works, loaded on
    first use."""
    code = ("import sys\nfrom pytransformer.cli.main import main\n"
            "sys.argv = ['pytransformer', 'translate', '-m', sys.argv[1], 'Hi.']\n"
            "try:\n    main()\n"
            "except SystemExit as done:\n    assert done.code in (0, None), done.code\n"
            "print('pytransformer.convert' in sys.modules)\n"
            "print(any(name == 'numpy' or name.startswith('numpy.') for name in sys.modules))\n"
            "print(sorted(name for name in sys.modules if name.startswith(("
            "'pytransformer.bench', 'pytransformer.cli.chat', 'pytransformer.cli.lm_chat', "
            "'pytransformer.cli.bench'))))\n"
            "import pytransformer\nprint(pytransformer.convert_marian.__module__)\n")
    completed = subprocess.run([sys.executable, "-c", code, str(marian)], capture_output=True,
                               text=True, timeout=PATIENCE_SECONDS, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    *_, converters_loaded, numpy_loaded, other_commands, module = completed.stdout.splitlines()
    assert converters_loaded == "False" and numpy_loaded == "False"
    assert other_commands == "[]"
    assert module.startswith("pytransformer.convert")


def test_invoked_commands_registers_the_named_command_or_all() -> None:
    from pytransformer.cli.main import COMMANDS, invoked_commands

    assert invoked_commands(["translate", "hello"]) == ["translate"]
    assert invoked_commands(["--debug", "bench", "x"]) == ["bench"]
    for arguments in ([], ["--help"], ["--version"], ["tranlate"], ["--debug"]):
        assert invoked_commands(arguments) == list(COMMANDS)


def test_a_lone_command_still_runs_as_a_subcommand(tmp_path: Path, marian: Path) -> None:
    """With only `translate` registered, the app stays a group: the name is still required
    and its own help is the command's."""
    from pytransformer.cli.main import build_app

    lone = build_app(["translate"])
    result = runner.invoke(lone, ["translate", "-m", str(marian), "Hi."])
    assert result.exit_code == 0, result.output
    assert result.output.strip()
    assert "--beam" in runner.invoke(lone, ["translate", "--help"]).output


def test_a_prefetched_translator_is_taken_only_by_the_same_load(marian: Path) -> None:
    from pytransformer.cli import session

    session.prefetch_translator(str(marian))
    prefetch = session._prefetches[-1]
    prefetch.join()
    other, _ = session.load_translator(str(marian), threads=1)  # other settings: a new load
    assert prefetch.result is not None and other is not prefetch.result[0]
    taken, path = session.load_translator(str(marian), threads=0)
    assert taken is prefetch.result[0] and path == prefetch.result[1]
    again, _ = session.load_translator(str(marian), threads=0)  # taken once only
    assert again is not taken and not session._prefetches


@pytest.mark.parametrize("model", ["broken", "missing"])
def test_a_failed_prefetch_leaves_the_error_to_the_command(tmp_path: Path, model: str) -> None:
    """main() prefetches the default model for a plain `translate`; a default model that cannot
    load is still reported as before, once, as a one-line error."""
    path = tmp_path / "model.ptm"
    if model == "broken":
        path.write_bytes(b"PTM1 but not a model")
    completed = subprocess.run(
        [sys.executable, "-m", "pytransformer", "translate", "hello"], capture_output=True,
        text=True, timeout=PATIENCE_SECONDS, stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTRANSFORMER_MODEL=str(path)))
    assert completed.returncode == 1 and completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(path) in lines[0], lines


@pytest.mark.parametrize("arguments, prefetched", [
    (["translate", "hello"], True),
    (["--debug", "translate", "--beam", "2", "hello"], True),
    (["translate", "-m", "other", "hello"], False),
    (["translate", "--model=other", "hello"], False),
    (["translate", "-t2", "hello"], False),
    (["translate", "--threads", "1", "hello"], False),
    (["translate", "--device", "cuda", "hello"], False),
    (["translate", "--no-shortlist", "hello"], False),
    (["translate", "--ray", "-f", "in.txt", "-o", "out.txt"], False),
    (["explain", "hello"], False),
])
def test_main_prefetches_only_a_default_translate(arguments: list[str], prefetched: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from pytransformer.cli import main as cli_main, session

    started = []
    monkeypatch.setattr(session, "prefetch_translator", lambda *key: started.append(key))
    cli_main._prefetch_default_model(arguments, cli_main.invoked_commands(arguments))
    assert started == ([(None,)] if prefetched else [])
