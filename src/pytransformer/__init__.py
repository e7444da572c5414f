"""pytransformer: exact, fast encoder-decoder Transformer translation from the terminal.

The public API: Translator (translate, translate_tokens, stream, attention, score) and what it
returns (Translation, Hypothesis, TranslationStream, Attention, Score); LanguageModel (complete, stream,
chat_prompt) for decoder-only language models, with Completion and TextTokenizer; describe_model() and ModelInfo (a model
file's description without loading it); resolve_model() (a model named by path, or by name in
the user models directory, as everywhere: Translator, --model, $PYTRANSFORMER_MODEL);
default_model_path() (the model Translator(None) loads: the one $PYTRANSFORMER_MODEL names, else
the one installed with the package); the converters convert_marian, convert_marian_native
(Marian's own .npz / .bin), convert_m2m100 (M2M100, NLLB-200), convert_ctranslate2
(translation models), convert_gguf, convert_llama_hf and convert_llama2c (language models);
ModelFormatError, ModelNotFoundError, ConversionError; info(). Everything else
(pytransformer._core, pytransformer.format, ...) is internal.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

from pytransformer._core import ModelFormatError
from pytransformer.model_files import (ModelInfo, ModelNotFoundError, default_model_path,
                                       describe_model, resolve_model)
from pytransformer.translator import (Attention, Hypothesis, Score, Translation,
                                      TranslationStream, Translator)

if TYPE_CHECKING:  # loaded on first use (__getattr__)
    from pytransformer.language_model import Completion, LanguageModel, TextTokenizer

try:  # written by the build; absent in a source tree that was not installed
    from pytransformer._version import version as __version__
except ImportError:
    __version__ = "unknown"


def info() -> dict[str, Any]:
    """Version and build information: package version, Python, platform, the compiled core,
    the CPU count, the core's CPU report (features, kernel variant in use) when the build
    provides one, and the CUDA backend: whether it is installed, the GPUs it sees and, when
    GPU 0 cannot be used, why."""
    import platform

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
    information["cuda"] = _cuda_info()
    return information


def _cuda_info() -> dict[str, Any]:
    try:
        _cuda = importlib.import_module("pytransformer._cuda")
    except ImportError as error:
        return {"installed": False, "problem": f"no CUDA backend in this installation ({error})"}
    return {"installed": True, "device_count": _cuda.device_count(), "devices": _cuda.devices(),
            "problem": _cuda.device_problem(0)}


# The converters load on first use: a translation never needs them (they cost a cold start
# about a tenth of a second of imports).
_CONVERTERS = ("ConversionError", "convert_ctranslate2", "convert_gguf", "convert_llama2c",
               "convert_llama_hf", "convert_m2m100", "convert_marian",
               "convert_marian_native")


# The language-model API loads on first use too: a translation never needs it.
_LANGUAGE_MODEL = ("Completion", "LanguageModel", "TextTokenizer")


def __getattr__(name: str) -> Any:
    if name in _CONVERTERS:
        convert = importlib.import_module("pytransformer.convert")
        return getattr(convert, name)
    if name in _LANGUAGE_MODEL:
        return getattr(importlib.import_module("pytransformer.language_model"), name)
    raise AttributeError(f"module 'pytransformer' has no attribute {name!r}")


__all__ = [
    "Attention",
    "Completion",
    "ConversionError",
    "Hypothesis",
    "LanguageModel",
    "ModelFormatError",
    "ModelInfo",
    "ModelNotFoundError",
    "TextTokenizer",
    "Score",
    "Translation",
    "TranslationStream",
    "Translator",
    "__version__",
    "convert_ctranslate2",
    "convert_gguf",
    "convert_llama2c",
    "convert_llama_hf",
    "convert_m2m100",
    "convert_marian",
    "default_model_path",
    "describe_model",
    "info",
    "resolve_model",
]
