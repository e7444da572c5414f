"""Converters from other toolkits' model directories into pytransformer files."""

from pytransformer.convert._common import ConversionError
from pytransformer.convert.marian import convert_marian

__all__ = ["ConversionError", "convert_marian"]
