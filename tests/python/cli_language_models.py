"""Language model files for the CLI tests: llama_models' random-weight Hugging Face models
converted with convert_llama_hf. Importing this module needs torch, transformers and tokenizers
(tests skip without them). Random weights give meaningless text: the tests check behaviour
against the Python API on the same file, never words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_models import build_llama
from pytransformer.convert import convert_llama_hf

# A model whose answers take seconds (wider layers, a long context): for interrupting one.
SLOW = {"hidden_size": 256, "intermediate_size": 1024, "max_position_embeddings": 4096}


def write_language_model(directory: Path, **options: Any) -> Path:
    """Builds a small Llama (llama_models.build_llama: its chat template unless
    chat_template=None; options such as max_position_embeddings=64 set the config) in
    `directory`/hf and converts it to `directory`/model.ptm."""
    build_llama(directory / "hf", kv_heads=2, tied=True, **options)
    return convert_llama_hf(directory / "hf", directory / "model.ptm")
