"""Where `--output` writes: `-` is stdout; a device, FIFO or socket (`/dev/null`, `/dev/stdout`)
is opened and written directly; a regular file (new or existing, reached through any symlinks)
is written atomically: to a temporary file in the target's directory, renamed over the target
only once complete, so an interrupted run never leaves a half-written file under the name.

The temporary file is `.NAME.PID.XXXXXXXX.partial`. A SIGKILLed run cannot remove its own; the
next run writing the same target removes those whose process is gone (same pattern, a regular
file owned by this user, PID not running), and nothing else.

Errors name the user's path, never the temporary file: OutputError (a CliError).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

from pytransformer.cli.console import stdout_stream
from pytransformer.cli.errors import OutputError
from pytransformer.filesystem import new_file_mode

STDOUT_NAME = "-"
_PARTIAL_SUFFIX = ".partial"
# mkstemp's random part: 8 characters of [a-z0-9_].
_RANDOM_PART = r"[a-z0-9_]{8}"


def os_error_reason(error: OSError) -> str:
    """An OSError as words, without the errno number or the path it held."""
    return (error.strerror or str(error) or type(error).__name__).lower()


class NamedOutput:
    """A text stream whose write errors name the user's path (OutputError), so that a full
    disk or a failing device is reported as `cannot write out.txt: no space left on device`.
    A broken pipe stays a BrokenPipeError: the reader left, which is not an error to report."""

    def __init__(self, stream: TextIO, name: str, on_stdout: bool = False) -> None:
        self.stream = stream
        self.name = name
        self.on_stdout = on_stdout

    def _failed(self, error: OSError) -> OutputError:
        return OutputError(self.name, os_error_reason(error), on_stdout=self.on_stdout)

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise self._failed(error) from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise self._failed(error) from None

    def fileno(self) -> int:
        return self.stream.fileno()


@contextmanager
def open_output(path: Path | str | None) -> Iterator[NamedOutput]:
    """The stream `--output PATH` writes to (None or `-`: stdout; see the module docstring).
    On normal exit the output is complete (a regular file renamed into place); on any exception
    (KeyboardInterrupt and SIGTERM included) a regular target is left as it was."""
    name = STDOUT_NAME if path is None else str(path)
    if name == STDOUT_NAME:
        output = NamedOutput(stdout_stream(), "stdout", on_stdout=True)
        yield output
        output.flush()
        return
    try:
        status = os.stat(name)  # follows symlinks: what a write would reach
    except FileNotFoundError:
        status = None  # a new file (or a dangling symlink: its target is created)
    except OSError as error:
        raise OutputError(name, os_error_reason(error)) from None
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise OutputError(name, "it is a directory")
    if status is not None and not stat.S_ISREG(status.st_mode):
        with _direct_output(name) as stream:
            yield stream
        return
    with atomic_text_output(Path(name)) as stream:
        yield NamedOutput(stream, name)


@contextmanager
def _direct_output(name: str) -> Iterator[NamedOutput]:
    """A device, FIFO or socket: written as it is (renaming over it would replace it)."""
    try:
        stream = open(name, "w", encoding="utf-8", newline="\n")
    except OSError as error:
        raise OutputError(name, os_error_reason(error)) from None
    output = NamedOutput(stream, name)
    try:
        yield output
        output.flush()
    finally:
        with suppress(OSError):
            stream.close()


def check_replaceable(name: str, status: os.stat_result) -> None:
    """Refuses to replace a file its permissions protect. The mode is checked explicitly:
    root may write any file, but a read-only file says the user does not want it changed."""
    mode = stat.S_IMODE(status.st_mode)
    if not mode & 0o222:
        raise OutputError(name, f"it is read-only (mode {mode:04o}); make it writable "
                                "(chmod u+w) or choose another file")
    if not os.access(name, os.W_OK):
        raise OutputError(name, "permission denied")


def _partial_pattern(target_name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(target_name)}\.(\d+)\.{_RANDOM_PART}"
                      rf"{re.escape(_PARTIAL_SUFFIX)}")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def remove_stale_partials(target: Path) -> list[Path]:
    """Removes temporary files that earlier, killed runs left for `target` (a resolved path):
    only names of our pattern for this very target, regular files owned by this user, whose
    process is no longer running. Returns those removed."""
    pattern = _partial_pattern(target.name)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            status = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(status.st_mode) or status.st_uid != os.geteuid():
            continue
        if _process_alive(int(match.group(1))):
            continue
        with suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def replaceable_target(name: str, target: Path,
                       not_regular: str = "not a regular file") -> os.stat_result | None:
    """The status of the file an output will replace (None: there is none yet, and its
    directory exists). OutputError naming `name` (with `not_regular` for a directory or a
    device) when it cannot be replaced."""
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise OutputError(name, os_error_reason(error)) from None
    if existing is not None:
        if not stat.S_ISREG(existing.st_mode):
            raise OutputError(name, not_regular)
        check_replaceable(name, existing)
    elif not target.parent.is_dir():
        raise OutputError(name, f"no such directory: {target.parent}")
    return existing


def put_in_place(name: str, written: str | Path, target: Path,
                 existing: os.stat_result | None) -> None:
    """Renames the complete file `written` over `target`, with the replaced file's permissions
    (and owner, where allowed) or, for a new file, those the umask gives."""
    try:
        os.chmod(written, stat.S_IMODE(existing.st_mode) if existing is not None
                 else new_file_mode())
        if existing is not None and (existing.st_uid, existing.st_gid) != \
                (os.geteuid(), os.getegid()):
            with suppress(OSError):  # only root may give a file away
                os.chown(written, existing.st_uid, existing.st_gid)
        os.replace(written, target)
    except OSError as error:
        raise OutputError(name, os_error_reason(error)) from None


@contextmanager
def atomic_text_output(path: Path) -> Iterator[TextIO]:
    """Yields a UTF-8 text stream; on normal exit its content replaces the regular file `path`
    (through symlinks: the file they lead to) in one rename, keeping its permissions (and its
    owner, where allowed); on any exception the temporary file is removed and `path` is left
    as it was. OutputError naming `path` when the file cannot be written or replaced."""
    name = str(path)
    target = Path(os.path.realpath(path))  # a symlink is followed, not replaced
    directory = target.parent
    existing = replaceable_target(name, target)
    remove_stale_partials(target)
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=_PARTIAL_SUFFIX, dir=directory)
    except OSError as error:
        raise OutputError(name, f"cannot create a file in {directory}: {os_error_reason(error)}"
                          ) from None
    try:
        stream = os.fdopen(descriptor, "w", encoding="utf-8", newline="\n")
        with stream:
            yield stream  # the caller's own exceptions pass through unchanged
            try:
                stream.flush()
                os.fsync(stream.fileno())
            except OSError as error:
                raise OutputError(name, os_error_reason(error)) from None
        put_in_place(name, temporary, target, existing)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
