"""Where `translate --output` writes, and how output failures are reported: a regular file is
replaced atomically (through symlinks), devices and FIFOs are written as they are, `-` is
stdout, a read-only file is refused, errors name the user's path; a closed or full stdout is a
one-line error; temporary files left by killed runs are cleaned up, and only those.

Device targets are reached through symlinks in the test's directory: if writing them ever
regressed to replacing the path, the symlink would be replaced, never the machine's /dev/null.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pytransformer
from pytransformer.cli.atomic import remove_stale_partials
from pytransformer.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    # (outside tmp_path, whose listing the tests check)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.delenv("PYTRANSFORMER_DEBUG", raising=False)
    monkeypatch.delenv("PYTRANSFORMER_MODEL", raising=False)


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def expected(marian: Path, text: str) -> str:
    return pytransformer.Translator(marian).translate([text])[0].text + "\n"


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    return line


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytransformer", *args]


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def _quoted(*args: str) -> str:
    import shlex

    return " ".join(shlex.quote(arg) for arg in _cli(*args))


# ---- regular files and symlinks -------------------------------------------------------------


def test_a_symlink_is_followed_not_replaced(marian: Path, tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "result.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    result = invoke("translate", "-m", str(marian), "-o", str(link), "Hello.")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == expected(marian, "Hello.")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the file's permissions are kept
    # the temporary file was made beside the target (same file system), and is gone
    assert sorted(os.listdir(real_dir)) == ["result.txt"]
    assert sorted(os.listdir(tmp_path)) == ["link.txt", "real"]


def test_a_dangling_symlink_creates_its_target(marian: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "new.txt")
    result = invoke("translate", "-m", str(marian), "-o", str(link), "Hello.")
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert (tmp_path / "new.txt").read_text() == expected(marian, "Hello.")


def test_a_read_only_file_is_refused(marian: Path, tmp_path: Path) -> None:
    # Tests run as root, whom permission bits do not stop: the mode is checked explicitly.
    target = tmp_path / "keep.txt"
    target.write_text("precious\n")
    target.chmod(0o444)
    line = one_line_error(invoke("translate", "-m", str(marian), "-o", str(target), "Hello."))
    assert line == f"error: cannot write {target}: it is read-only (mode 0444); make it " \
                   "writable (chmod u+w) or choose another file"
    assert target.read_text() == "precious\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]
    # through a symlink too
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    line = one_line_error(invoke("translate", "-m", str(marian), "-o", str(link), "Hello."))
    assert f"cannot write {link}: it is read-only" in line
    assert link.is_symlink() and target.read_text() == "precious\n"


def test_errors_name_the_users_path(marian: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing-dir" / "out.txt"
    line = one_line_error(invoke("translate", "-m", str(marian), "-o", str(missing), "Hi."))
    assert line == f"error: cannot write {missing}: no such directory: {missing.parent}"
    directory = tmp_path / "a-directory"
    directory.mkdir()
    line = one_line_error(invoke("translate", "-m", str(marian), "-o", str(directory), "Hi."))
    assert line == f"error: cannot write {directory}: it is a directory"
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    line = one_line_error(invoke("translate", "-m", str(marian), "-o", str(loop), "Hi."))
    assert line.startswith(f"error: cannot write {loop}: ") and "errno" not in line.lower()
    assert ".partial" not in line


# ---- devices, FIFOs, stdout -----------------------------------------------------------------


def test_a_device_is_written_not_replaced(marian: Path, tmp_path: Path) -> None:
    sink = tmp_path / "sink"
    sink.symlink_to(os.devnull)
    result = invoke("translate", "-m", str(marian), "-o", str(sink), "Thank you.")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert sink.is_symlink() and stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert os.listdir(tmp_path) == ["sink"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_device_is_a_one_line_error(marian: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.symlink_to("/dev/full")
    line = one_line_error(invoke("translate", "-m", str(marian), "-o", str(full), "Hi."))
    assert line == f"error: cannot write {full}: no space left on device"
    assert full.is_symlink() and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_fifo_is_written_directly(marian: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = invoke("translate", "-m", str(marian), "-o", str(fifo), "Hello.")
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert received == [expected(marian, "Hello.")]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dash_is_stdout(marian: Path, tmp_path: Path) -> None:
    result = invoke("translate", "-m", str(marian), "-o", "-", "Hello.")
    assert result.exit_code == 0, result.output
    assert result.stdout == expected(marian, "Hello.")
    assert not (Path.cwd() / "-").exists() and not (tmp_path / "-").exists()


def test_dev_stdout_reaches_the_callers_pipe(marian: Path, tmp_path: Path) -> None:
    # /dev/stdout is a symlink to /proc/self/fd/1; this one lives in tmp_path (see the
    # module docstring).
    own_stdout = tmp_path / "stdout"
    own_stdout.symlink_to("/proc/self/fd/1")
    completed = subprocess.run(_cli("translate", "-m", str(marian), "-o", str(own_stdout),
                                    "Hello."), capture_output=True, text=True, timeout=60,
                               cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == expected(marian, "Hello.")
    assert own_stdout.is_symlink()


def test_a_closed_stdout_is_a_one_line_error(marian: Path, tmp_path: Path) -> None:
    closed = _shell(_quoted("translate", "-m", str(marian), "Hello.") + " >&-", tmp_path)
    assert closed.returncode == 1
    assert closed.stderr == "error: stdout is closed: there is nowhere to write the output " \
                            "(redirect it, e.g. > out.txt)\n"
    # --output does not need stdout
    to_file = _shell(_quoted("translate", "-m", str(marian), "-o", "out.txt", "Hello.") +
                     " >&-", tmp_path)
    assert to_file.returncode == 0, to_file.stderr
    assert (tmp_path / "out.txt").read_text() == expected(marian, "Hello.")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_stdout_is_a_one_line_error(marian: Path, tmp_path: Path) -> None:
    full = _shell(_quoted("translate", "-m", str(marian), "Hello.") + " > /dev/full", tmp_path)
    assert full.returncode == 1
    assert full.stderr == "error: cannot write stdout: no space left on device\n"


# ---- temporary files left by killed runs ----------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_only_stale_partials_of_the_same_target_are_removed(tmp_path: Path) -> None:
    dead = _dead_pid()
    target = tmp_path / "out.txt"
    stale = tmp_path / f".out.txt.{dead}.abcd_123.partial"
    kept = {
        "alive": tmp_path / f".out.txt.{os.getpid()}.abcd_123.partial",  # a running process
        "other target": tmp_path / f".other.txt.{dead}.abcd_123.partial",
        "no pid (not our pattern)": tmp_path / ".out.txt.abcd_123.partial",
        "not hidden": tmp_path / f"out.txt.{dead}.abcd_123.partial",
        "user file": tmp_path / "out.txt.partial",
    }
    for path in [stale, *kept.values()]:
        path.write_text("x")
    foreign = tmp_path / f".out.txt.{dead}.zzzz_999.partial"  # another user's
    foreign.write_text("x")
    os.chown(foreign, os.geteuid() + 4242, -1)
    link = tmp_path / f".out.txt.{dead}.link_999.partial"  # a symlink, not a file of ours
    link.symlink_to(tmp_path / "out.txt.partial")
    directory = tmp_path / f".out.txt.{dead}.dirx_999.partial"
    directory.mkdir()
    assert remove_stale_partials(target) == [stale]
    assert not stale.exists()
    for why, path in kept.items():
        assert path.exists(), why
    assert foreign.exists() and link.is_symlink() and directory.is_dir()


def test_a_run_removes_what_a_killed_run_left(marian: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    left = tmp_path / f".out.txt.{_dead_pid()}.k1ll_ed0.partial"
    left.write_text("half a transla")
    result = invoke("translate", "-m", str(marian), "-o", str(target), "Hello.")
    assert result.exit_code == 0, result.output
    assert not left.exists()
    assert target.read_text() == expected(marian, "Hello.")
