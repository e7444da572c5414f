"""What the converters share: their error type and small file helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ConversionError(ValueError):
    """A model directory cannot be converted (missing file, unsupported variant, bad data)."""


def read_json(path: Path) -> Any:
    """The parsed JSON of `path`; ConversionError naming the file when it is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"{path}: not valid JSON: {error}") from None


def detect_model_format(directory: Path) -> str:
    """Which toolkit wrote the model directory: 'marian' (a Hugging Face Marian / OPUS-MT
    directory), 'm2m100' (a Hugging Face M2M100 or NLLB-200 directory: config.json with
    model_type 'm2m_100'), 'marian_native' (Marian's own: a .npz or Marian-binary .bin model
    with its vocabularies), 'llama_hf' (a Hugging Face Llama, SmolLM or Qwen2 causal language model:
    config.json with model_type 'llama' or 'qwen2'), 'ctranslate2' (model.bin + vocabularies) or
    'argos' (an argos-translate package: a CTranslate2 model in model/). ConversionError naming
    the directory otherwise."""
    config = directory / "config.json"
    if config.is_file() and not (directory / "model.bin").is_file():
        try:
            model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            model_type = None
        if model_type == "marian":
            return "marian"
        if model_type in ("m2m_100", "m2m100"):
            return "m2m100"
        if model_type in ("llama", "qwen2"):
            return "llama_hf"
        raise ConversionError(f"{directory}: config.json has model_type {model_type!r}; only "
                              "Marian (OPUS-MT), M2M100 / NLLB-200, Llama and Qwen2 Hugging "
                              "Face models are supported")
    from pytransformer.convert.marian_native import is_marian_model_dir

    if is_marian_model_dir(directory):  # before CTranslate2: a Marian model may be model.bin
        return "marian_native"
    if (directory / "model.bin").is_file():
        return "ctranslate2"
    if (directory / "metadata.json").is_file() and (directory / "model" / "model.bin").is_file():
        return "argos"
    raise ConversionError(f"{directory}: not a Marian, Llama or Qwen2 (config.json + weights), "
                          "Marian (.npz / .bin + vocabularies) or CTranslate2 (model.bin) model "
                          "directory, nor an argos-translate package")


def converter_name(module: str) -> str:
    """`general.converter` value: the converter module and the package version."""
    from pytransformer import __version__

    return f"pytransformer {__version__} ({module})"
