"""What the command line says about itself: help (flags without a value type, usage lines),
usage errors as one line, `models` naming what -m accepts, `explain` fitting the terminal."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import pytransformer
from pytransformer.cli.heatmap import SHADES, required_width
from pytransformer.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("PYTRANSFORMER_DEBUG", raising=False)
    monkeypatch.delenv("PYTRANSFORMER_MODEL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # help lines unwrapped, so they can be matched
    return data


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


COMMANDS = sorted(typer.main.get_command(app).commands)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_flags_show_as_plain_flags(command: str | None) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert re.search(r"--help +-h +Show this message", result.stdout)


def test_usage_lines_show_arguments_once() -> None:
    translate = invoke("translate", "--help").stdout
    assert "Usage: pytransformer translate [OPTIONS] [TEXT]..." in translate
    assert "[[" not in translate
    explain = invoke("explain", "--help").stdout
    assert "Usage: pytransformer explain [OPTIONS] {TEXT}..." in explain
    json_row = next(line for line in translate.splitlines() if "--json" in line)
    assert re.search(r"--json +Print JSON", json_row)


@pytest.mark.parametrize("arguments, message", [
    (["convert", "x", "y", "--quantize", "int4"],
     "error: --quantize: 'int4' is not one of int8, int8_all, f16, bf16, q8_0, q4_1, gguf"),
    (["translate", "--beam", "0", "x"], "error: --beam: must be at least 1 (got 0)"),
    (["translate", "--n-best", "two", "x"], "error: --n-best: 'two' is not a whole number"),
    (["translate", "--threads", "-1", "x"], "error: --threads: must be at least 0 (got -1)"),
    (["translate", "--qwxyz", "x"],
     "error: no such option --qwxyz (see 'pytransformer translate --help')"),
    (["translate", "--fro", "en", "x"],
     "error: no such option --fro; did you mean --format or --from or --to? "
     "(see 'pytransformer translate --help')"),
    (["explain"], "error: missing argument 'TEXT' (see 'pytransformer explain --help')"),
    (["no-such-command"], "error: no such command 'no-such-command' "
                          "(see 'pytransformer --help')"),
])
def test_usage_errors_are_one_line(arguments: list[str], message: str) -> None:
    result = invoke(*arguments)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == message + "\n"


def test_no_arguments_shows_the_help() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert "Usage: pytransformer [OPTIONS] COMMAND [ARGS]..." in result.output
    assert "error:" not in result.output


def test_models_name_what_the_model_option_accepts(isolated_data_dir: Path, marian: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    models_dir = isolated_data_dir / "pytransformer" / "models"
    models_dir.mkdir(parents=True)
    shutil.copy(marian, models_dir / "opus-mt-en-de.ptm")
    internal = pytransformer.describe_model(marian).name
    assert internal and internal != "opus-mt-en-de"
    monkeypatch.setenv("PYTRANSFORMER_MODEL", str(marian))  # a default outside the directory
    listed = json.loads(invoke("models", "--json").stdout)["models"]
    assert [(m["origin"], m["model_option"]) for m in listed] == [("default", None),
                                                                   ("user", "opus-mt-en-de")]
    table = invoke("models").stdout
    row = next(line for line in table.splitlines() if str(models_dir) in line)
    assert row.split("│")[2].strip() == "opus-mt-en-de"
    assert internal not in table.replace(str(marian), "")
    assert "pass a model's name to --model/-m" in table
    # and the name listed is one -m takes
    assert invoke("translate", "-m", "opus-mt-en-de", "Hello.").exit_code == 0


def test_explain_fits_a_narrow_terminal_or_says_how_wide_it_must_be(
        marian: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    result = invoke("explain", "-m", str(marian), "The cat sleeps on the mat.")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line.rstrip()) <= 40 for line in lines)
    attention = pytransformer.Translator(marian).attention("The cat sleeps on the mat.")
    assert required_width(attention.source_pieces, attention.target_pieces) <= 40 < \
        len(attention.source_pieces) * 3  # (too many pieces for spaced columns)
    # one line per target piece, each with one shade per source piece: nothing wrapped
    units = next(line for line in lines if line.strip().startswith("0123456789"))
    start = units.index("0")
    rows = [line[start:] for line in lines
            if len(line) > start and set(line[start:]) <= set(SHADES)]
    assert len(rows) == len(attention.target_pieces)
    assert all(len(row) == len(attention.source_pieces) for row in rows)
    monkeypatch.setenv("COLUMNS", "12")
    narrow = invoke("explain", "-m", str(marian), "The cat sleeps on the mat.")
    assert narrow.exit_code == 1 and narrow.stdout == ""
    [line] = narrow.stderr.splitlines()
    assert re.fullmatch(r"error: the heatmap of this sentence needs (\d+) columns and the "
                        r"terminal has 12: widen it \(or set COLUMNS\), or use --json", line)
