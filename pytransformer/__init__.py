"""pytransformer: exact, fast encoder-decoder Transformer translation from the terminal.

The public API: Translator (translate, translate_tokens, stream), Translation and Hypothesis,
the converters convert_marian and convert_ctranslate2, ModelFormatError, ConversionError, and
info(). Everything else (pytransformer._core, pytransformer.format, ...) is internal.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pytransformer._core import ModelFormatError
from pytransformer.convert import ConversionError, convert_ctranslate2, convert_marian
from pytransformer.translator import Hypothesis, Translation, Translator

try:
    __version__ = version("pytransformer")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "unknown"


def info() -> dict[str, Any]:
    """Version and build information: package version, Python, platform, the compiled core,
    the CPU count, and the core's CPU report (features, kernel variant in use) when the build
    provides one."""
    from pytransformer import _core

    information: dict[str, Any] = {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "core": os.path.basename(_core.__file__),
        "cpu_count": os.cpu_count() or 1,
    }
    cpu_info = getattr(_core, "cpu_info", None)  # bind_cpu.cpp (kernel ISA dispatch)
    if cpu_info is not None:
        information["cpu"] = cpu_info()
    return information


__all__ = [
    "ConversionError",
    "Hypothesis",
    "ModelFormatError",
    "Translation",
    "Translator",
    "__version__",
    "convert_ctranslate2",
    "convert_marian",
    "info",
]
