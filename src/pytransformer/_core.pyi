"""Type stubs of the private extension pytransformer._core (csrc/python/bind_*.cpp).

Use the public API (pytransformer.Translator, pytransformer.convert_*) instead.
"""

from os import PathLike
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt

_Ids = Sequence[Sequence[int]]
_Hypothesis = tuple[list[int], float, bool]  # (tokens without the final EOS, score, finished)

class ModelFormatError(ValueError):
    """A model file is malformed, truncated, inconsistent or of an unsupported version."""

# bind_format.cpp
class ModelFile:
    """A validated pytransformer model file (docs/format.md): metadata and tensor directory,
    tensors read from the file when asked."""

    def __init__(self, path: str | PathLike[str]) -> None: ...
    @property
    def path(self) -> str: ...
    @property
    def format_version(self) -> int: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    def tensor_names(self) -> list[str]: ...
    def tensor_info(self, name: str) -> tuple[str, tuple[int, ...]]: ...
    def tensor_offset(self, name: str) -> int: ...
    def tensor(self, name: str, dequantize: bool = True,
               verify: bool = False) -> npt.NDArray[Any]: ...
    @property
    def has_checksums(self) -> bool: ...
    def verify(self) -> int: ...

def expected_tensors(metadata: dict[str, Any]) -> list[tuple[str, tuple[int, ...], bool]]: ...
def known_metadata_types() -> dict[str, int]: ...
def _crc32(data: bytes, crc: int = 0, tables: bool = False) -> int: ...

# bind_model.cpp
class EncoderDecoderModel:
    """What the searches decode with (the contract of Model)."""

    @property
    def path(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def file(self) -> ModelFile: ...
    def encode(self, source_ids: _Ids) -> tuple[npt.NDArray[np.float32], list[int]]: ...
    def teacher_forced_logits(self, source_ids: _Ids,
                              target_ids: _Ids) -> list[npt.NDArray[np.float32]]: ...
    def cross_attention(self, source_ids: _Ids,
                        target_ids: _Ids) -> list[npt.NDArray[np.float32]]: ...
    def start_decoding(self, source_ids: _Ids, max_hypotheses: int,
                       max_steps: int) -> DecoderSession: ...

class Model(EncoderDecoderModel):
    """An encoder-decoder Transformer loaded from a model file (read into memory: changing the
    file afterwards does not affect it), on the CPU when made here, on a GPU when made by the
    CUDA backend's _cuda.load_model."""

    def __init__(self, path: str, threads: int = 0) -> None: ...
    @property
    def device(self) -> str:
        """"cpu" or "cuda:N"."""
    @property
    def device_description(self) -> str:
        """The device's kernels: "avx512_vnni kernels, 2 threads", "... exact GEMM"."""

class LanguageModel(EncoderDecoderModel):
    """A decoder-only language model (general.architecture llama) loaded from a model file on
    the CPU. Prompts are its sources: encode() is the prompt pass (not callable from Python),
    each prompt's last token its first decoder input; generate() continues the prompts."""

    def __init__(self, path: str, threads: int = 0) -> None: ...
    @property
    def device(self) -> str: ...
    @property
    def device_description(self) -> str: ...

class DecoderSession:
    """One decoding loop over the KV cache (Model.start_decoding)."""

    @property
    def step_count(self) -> int: ...
    def step(self, tokens: Sequence[int], sentence: Sequence[int],
             parent: Sequence[int] | None = None, return_attention: bool = False
             ) -> npt.NDArray[np.float32] | tuple[npt.NDArray[np.float32],
                                                  npt.NDArray[np.float32]]: ...

# bind_decoding.cpp
class SearchOptions:
    """The model's generation defaults, then the keywords given (TypeError for unknown ones)."""
    beam_size: int
    n_best: int
    max_length: int
    min_length: int
    length_penalty: float
    suppressed_ids: list[int]
    forced_eos: bool
    renormalize_logits: bool
    no_repeat_ngram_size: int
    count_prefix: bool
    convention: str  # "transformers", "ctranslate2" or "marian"
    max_length_factor: float  # marian convention, 0: off
    word_penalty: float  # marian convention
    sampling: bool
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repetition_penalty: float
    seed: int
    max_batch_tokens: int
    word_continuations: list[int]  # with constraints
    whole_words: list[int]  # with constraints: per sentence, 1 where they are whole words
    def __init__(self, model: EncoderDecoderModel, **overrides: Any) -> None: ...

def generate(model: EncoderDecoderModel, source_ids: _Ids, options: SearchOptions | None = None,
             *, target_prefix: Sequence[Sequence[int] | None] | None = None,
             callback: Callable[[int, int], bool | None] | None = None,
             allowed_ids: Sequence[Sequence[int]] | None = None,
             constraints: Sequence[Sequence[Sequence[Sequence[int]]]] | None = None
             ) -> list[list[_Hypothesis]]: ...

# bind_cpu.cpp
def cpu_info() -> dict[str, Any]: ...

# bind_heap_allocations.cpp
def _heap_allocations() -> int: ...
