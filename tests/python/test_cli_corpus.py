"""`translate --file` on corpora: read, translated and written in windows of lines (memory flat
in the file's size), `--resume` after a kill, progress and its summary line, `--json-lines`.

Tiny random models keep this quick: their output is nonsense, but deterministic."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_models import PATIENCE_SECONDS, write_endless_model
from pytransformer.cli.corpus import InputErrors, read_windows, resume_path
from pytransformer.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.delenv("PYTRANSFORMER_DEBUG", raising=False)
    monkeypatch.delenv("PYTRANSFORMER_MODEL", raising=False)


def invoke(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytransformer", *args]


def corpus_bytes(lines: int, seed: int = 0) -> bytes:
    """Lines of the tiny models' pieces: some empty, some with two sentences, some CRLF."""
    rng = random.Random(seed)
    out = []
    for number in range(lines):
        words = " ".join(f"▁w{rng.randint(3, 30)}" for _ in range(rng.randint(0, 5)))
        if number % 11 == 5:
            words = f"▁w5 ▁w6. ▁W7 {words}"
        out.append(words + ("\r\n" if number % 7 == 0 else "\n"))
    return "".join(out).encode("utf-8")


def test_windows_end_at_multiples_of_their_size(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"\xef\xbb\xbfa\r\nb\n\nc\nd\ne\r\nf")
    windows = list(read_windows(source, InputErrors.strict, 3))
    assert windows == [(1, ["a", "b", ""]), (4, ["c", "d", "e"]), (7, ["f"])]
    assert list(read_windows(source, InputErrors.strict, 3, skip=4)) == [(5, ["d", "e"]),
                                                                         (7, ["f"])]


def test_windows_give_the_whole_file_output(bidirectional: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(corpus_bytes(120))
    whole = invoke("translate", "-m", str(bidirectional), input=source.read_bytes())  # stdin
    assert whole.exit_code == 0, whole.output
    for window in ("7", "32", "1000"):
        windowed = invoke("translate", "-m", str(bidirectional), "-f", str(source),
                          "--window-lines", window)
        assert windowed.exit_code == 0, windowed.output
        assert windowed.stdout == whole.stdout
    assert whole.stdout.count("\n") == 120
    output = tmp_path / "out.txt"
    to_file = invoke("translate", "-m", str(bidirectional), "-f", str(source), "-o",
                     str(output), "--window-lines", "9")
    assert to_file.exit_code == 0, to_file.output
    assert output.read_text(encoding="utf-8") == whole.stdout
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "out.txt"]


def test_an_empty_file_gives_an_empty_output(bidirectional: Path, tmp_path: Path) -> None:
    source = tmp_path / "empty.txt"
    source.write_bytes(b"")
    output = tmp_path / "out.txt"
    for extra in ([], ["--resume"]):
        result = invoke("translate", "-m", str(bidirectional), "-f", str(source), "-o",
                        str(output), *extra)
        assert result.exit_code == 0, result.output
        assert output.read_bytes() == b""
    assert sorted(os.listdir(tmp_path)) == ["empty.txt", "out.txt"]


def test_invalid_lines_are_numbered_across_windows(bidirectional: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.txt"
    source.write_bytes(b"\xe9\n" + b"\xe2\x96\x81w3\n" * 8 + b"caf\xe9\n\xff\n")
    strict = invoke("translate", "-m", str(bidirectional), "-f", str(source),
                    "--window-lines", "3")
    assert strict.exit_code == 1 and strict.stdout == ""  # nothing translated
    assert "bad.txt: invalid UTF-8 on line 1 (byte 0xe9)" in strict.stderr
    source.write_bytes(b"\xe2\x96\x81w3\n" * 8 + b"caf\xe9\n\xff\n")
    strict = invoke("translate", "-m", str(bidirectional), "-f", str(source),
                    "--window-lines", "3")
    assert strict.exit_code == 1 and strict.stdout == ""
    assert "bad.txt: invalid UTF-8 on line 9 (byte 0xe9)" in strict.stderr
    skipped = invoke("translate", "-m", str(bidirectional), "-f", str(source), "--errors",
                     "skip", "--window-lines", "3", "--json-lines")
    assert skipped.exit_code == 0, skipped.output
    assert "bad.txt: invalid UTF-8 on lines 9, 10 (left untranslated" in skipped.stderr
    records = [json.loads(line) for line in skipped.stdout.splitlines()]
    assert [record["line"] for record in records] == list(range(1, 11))
    assert [record["translation"] for record in records[8:]] == ["", ""]
    replaced = invoke("translate", "-m", str(bidirectional), "-f", str(source), "--errors",
                      "replace", "--window-lines", "4", "--json-lines")
    assert [json.loads(line)["source"] for line in replaced.stdout.splitlines()][8:] == \
        ["caf\ufffd", "\ufffd"]


def test_json_lines_one_object_per_input_line(bidirectional: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(corpus_bytes(30))
    plain = invoke("translate", "-m", str(bidirectional), "-f", str(source), "-n", "2")
    result = invoke("translate", "-m", str(bidirectional), "-f", str(source), "-n", "2",
                    "--json-lines", "--window-lines", "8")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    sources = source.read_text(encoding="utf-8").splitlines()
    assert [r["line"] for r in records] == list(range(1, 31))
    assert [r["source"] for r in records] == sources
    assert ["\t".join(r["hypotheses"]) for r in records] == plain.stdout.splitlines()
    assert all(r["translation"] == r["hypotheses"][0] for r in records)
    on_stdin = invoke("translate", "-m", str(bidirectional), "--json-lines", input="▁w3\n\n")
    assert [json.loads(line)["line"] for line in on_stdin.stdout.splitlines()] == [1, 2]
    both = invoke("translate", "-m", str(bidirectional), "--json", "--json-lines", "▁w3")
    assert both.exit_code == 1 and "not both" in both.stderr


def test_progress_summary_line(bidirectional: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(corpus_bytes(25))
    shown = invoke("translate", "-m", str(bidirectional), "-f", str(source), "--progress",
                   "--window-lines", "10")
    assert shown.exit_code == 0, shown.output
    [summary] = [line for line in shown.stderr.splitlines() if line.startswith("translated")]
    assert summary.startswith("translated 25 lines (") and "lines/s" in summary
    assert " s: " in summary and "tokens/s" in summary
    quiet = invoke("translate", "-m", str(bidirectional), "-f", str(source), "--progress",
                   "--quiet")
    assert quiet.stderr == "" and quiet.stdout == shown.stdout


def test_resume_needs_a_file_and_an_output(bidirectional: Path) -> None:
    result = invoke("translate", "-m", str(bidirectional), "--resume", "▁w3")
    assert result.exit_code == 1 and "--resume needs --file FILE and --output FILE" in \
        result.stderr


def test_a_partial_output_without_resume_is_refused(bidirectional: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(corpus_bytes(5))
    output = tmp_path / "out.txt"
    resume_path(output).write_text("▁w3\n")
    result = invoke("translate", "-m", str(bidirectional), "-f", str(source), "-o", str(output))
    assert result.exit_code == 1
    assert "out.txt.partial exists" in result.stderr and "--resume" in result.stderr
    assert not output.exists()
    resume_path(output).write_text("\n" * 6)  # more lines than the input has
    result = invoke("translate", "-m", str(bidirectional), "-f", str(source), "-o", str(output),
                    "--resume")
    assert result.exit_code == 1 and "not this input's output" in result.stderr


def test_resume_completes_a_cut_partial_output(bidirectional: Path, tmp_path: Path) -> None:
    """A partial output holding whole lines and a cut one (as SIGKILL can leave it)."""
    source = tmp_path / "in.txt"
    source.write_bytes(corpus_bytes(40))
    expected = invoke("translate", "-m", str(bidirectional), "-f", str(source)).stdout
    output = tmp_path / "out.txt"
    cut = expected.encode("utf-8")
    cut = cut[:cut.index(b"\n", len(cut) // 2) + 4]
    resume_path(output).write_bytes(cut)
    result = invoke("translate", "-m", str(bidirectional), "-f", str(source), "-o", str(output),
                    "--resume", "--window-lines", "6", "--progress")
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf-8") == expected
    assert "resumed after line" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "out.txt"]


def test_resume_after_sigkill_is_identical(tmp_path: Path) -> None:
    model = write_endless_model(tmp_path / "slow.ptm", max_length=200)
    source = tmp_path / "in.txt"
    source.write_text("".join(f"▁w{3 + i % 20} ▁w4\n" for i in range(60)))
    arguments = ["-m", str(model), "-f", str(source), "--max-length", "40", "--window-lines",
                 "4"]
    reference = tmp_path / "reference.txt"
    done = subprocess.run(_cli("translate", *arguments, "-o", str(reference)),
                          capture_output=True, timeout=PATIENCE_SECONDS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    output = tmp_path / "out.txt"
    partial = resume_path(output)
    # The first run without --resume: a corpus run into a file can always be resumed.
    process = subprocess.Popen(_cli("translate", *arguments, "-o", str(output)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not (partial.exists() and partial.read_bytes().count(b"\n") >= 8):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=PATIENCE_SECONDS)
    assert not output.exists()
    kept = partial.read_bytes().count(b"\n")
    assert 8 <= kept < 60, kept  # killed mid-way
    again = subprocess.run(_cli("translate", *arguments, "-o", str(output)),
                           capture_output=True, text=True, timeout=PATIENCE_SECONDS,
                           cwd=tmp_path)
    assert again.returncode == 1 and "--resume" in again.stderr  # refused without --resume
    resumed = subprocess.run(_cli("translate", *arguments, "-o", str(output), "--resume"),
                             capture_output=True, timeout=PATIENCE_SECONDS, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert output.read_bytes() == reference.read_bytes()
    assert not partial.exists()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_an_interrupted_run_keeps_its_partial_output(tmp_path: Path, how: signal.Signals,
                                                     resume: list[str]) -> None:
    model = write_endless_model(tmp_path / "slow.ptm", max_length=200)
    source = tmp_path / "in.txt"
    source.write_text("".join(f"▁w{3 + i % 20} ▁w4\n" for i in range(60)))
    output = tmp_path / "out.txt"
    process = subprocess.Popen(_cli("translate", "-m", str(model), "-f", str(source), "-o",
                                    str(output), "--max-length", "40", "--window-lines", "4",
                                    *resume),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    partial = resume_path(output)
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not (partial.exists() and partial.read_bytes().count(b"\n") >= 4):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=PATIENCE_SECONDS)
    assert process.returncode == 128 + how, stderr
    assert b"Traceback" not in stderr
    assert not output.exists()
    assert partial.read_bytes().endswith(b"\n") and partial.read_bytes().count(b"\n") >= 4


_PEAK_RSS = """
import resource, sys
from pytransformer.cli.main import app
sys.argv = ["pytransformer", *sys.argv[1:]]
try:
    app()
except SystemExit as exit:
    assert not exit.code, exit.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def test_memory_is_flat_in_the_file_size(bidirectional: Path, tmp_path: Path) -> None:
    """Peak RSS of a 200,000-line run stays near that of a 2,000-line one. Blank lines (no
    sentence: the model is not run), each a distinct str when held: reading the whole file,
    as stdin still is, peaks about 16 MiB higher."""
    peaks = []
    for lines in (2_000, 200_000):
        source = tmp_path / f"in{lines}.txt"
        source.write_bytes(b"   \n" * (lines - 1) + "▁w3\n".encode())
        result = subprocess.run([sys.executable, "-c", _PEAK_RSS, "translate", "-m",
                                 str(bidirectional), "-f", str(source), "-o",
                                 str(tmp_path / "out.txt")],
                                capture_output=True, text=True, timeout=PATIENCE_SECONDS)
        assert result.returncode == 0, result.stderr
        peaks.append(int(result.stderr.strip().splitlines()[-1]))  # KiB
    assert peaks[1] < peaks[0] + 6 * 1024, peaks


def test_stdin_is_translated_as_it_flows(marian: Path) -> None:
    """A pipe written line by line gets each translation before the next line is written (the
    writer waits for it), and the output equals the whole input's translated at once."""
    lines = ["a house.", "", "the cat runs. A dog.", "small red tree"]
    expected = invoke("translate", "-m", str(marian),
                      input="\n".join(lines) + "\n").stdout.splitlines()
    assert len(expected) == len(lines)
    child = subprocess.Popen(_cli("translate", "-m", str(marian)), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line, translation in zip(lines, expected):
            child.stdin.write(line.encode() + b"\n")
            child.stdin.flush()
            ready, _, _ = select.select([child.stdout], [], [], PATIENCE_SECONDS)
            assert ready, "no translation of a line while the input stayed open"
            assert child.stdout.readline().decode().rstrip("\n") == translation
        child.stdin.close()
        assert child.wait(timeout=PATIENCE_SECONDS) == 0, child.stderr.read().decode()
        assert child.stdout.read() == b""
    finally:
        child.kill()
        child.wait()


def test_streamed_stdin_equals_the_file_path(marian: Path, tmp_path: Path) -> None:
    """BOM, CRLF, empty lines, bad UTF-8 (replaced, named once with its global number), a last
    line without a newline, windows of 3 lines: the same output as --file."""
    data = (b"\xef\xbb\xbfa house.\r\n\nthe cat\n" + b"big dog.\n" * 5 + b"bad \xff\n" +
            b"no newline")
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    by_file = subprocess.run(_cli("translate", "-m", str(marian), "--errors", "replace", "-f",
                                  str(source)), capture_output=True, timeout=PATIENCE_SECONDS)
    streamed = subprocess.run(_cli("translate", "-m", str(marian), "--errors", "replace",
                                   "--window-lines", "3"), input=data, capture_output=True,
                              timeout=PATIENCE_SECONDS)
    assert streamed.returncode == by_file.returncode == 0, streamed.stderr
    assert streamed.stdout == by_file.stdout and len(streamed.stdout.splitlines()) == 10
    assert b"stdin: invalid UTF-8 on line 9" in streamed.stderr
    strict = subprocess.run(_cli("translate", "-m", str(marian)), input=data,
                            capture_output=True, timeout=PATIENCE_SECONDS)
    assert strict.returncode == 1 and b"stdin: invalid UTF-8 on line 9" in strict.stderr
