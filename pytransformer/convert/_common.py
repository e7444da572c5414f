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


def converter_name(module: str) -> str:
    """`general.converter` value: the converter module and the package version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("pytransformer")
    except PackageNotFoundError:
        package_version = "unknown"
    return f"pytransformer {package_version} ({module})"
