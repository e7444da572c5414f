"""Small file-system facts shared by the Python API and the CLI."""

from __future__ import annotations

import os


def new_file_mode() -> int:
    """The permissions a new regular file gets under this process's umask (0o666 & ~umask),
    for files written under a temporary name (created 0o600) and renamed into place."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
