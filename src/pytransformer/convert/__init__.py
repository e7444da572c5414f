"""Converters from other toolkits' model directories into pytransformer files."""

from pytransformer.convert._common import ConversionError, detect_model_format
from pytransformer.convert.ctranslate2 import convert_ctranslate2
from pytransformer.convert.gguf_llama import convert_gguf
from pytransformer.convert.llama2c import convert_llama2c
from pytransformer.convert.llama_hf import convert_llama_hf
from pytransformer.convert.m2m100 import convert_m2m100
from pytransformer.convert.marian import convert_marian
from pytransformer.convert.marian_native import convert_marian_native

__all__ = ["ConversionError", "convert_ctranslate2", "convert_gguf", "convert_llama2c",
           "convert_llama_hf", "convert_m2m100", "convert_marian", "convert_marian_native",
           "detect_model_format"]
