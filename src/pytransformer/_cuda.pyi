"""Type stubs of the optional private extension pytransformer._cuda (csrc/python/cuda/*.cpp),
built with PYTRANSFORMER_CUDA=ON or AUTO (docs/cuda.md).

Use the public API instead: pytransformer.Translator(..., device="cuda").
"""

import numpy as np
import numpy.typing as npt

from pytransformer._core import LanguageModel, Model

_Floats = npt.ArrayLike
_Result = npt.NDArray[np.float32]

cublas_available: bool

# bind_device.cpp
def device_count() -> int: ...
def device_problem(device: int = 0) -> str | None: ...
def devices() -> list[str]: ...

# bind_model.cpp
def load_model(path: str, device: int = 0, gemm: str = "exact") -> Model:
    """The model on CUDA GPU `device`: a _core.Model whose device is "cuda:N"."""
def load_language_model(path: str, device: int = 0, gemm: str = "exact") -> LanguageModel:
    """The decoder-only language model on CUDA GPU `device`: a _core.LanguageModel."""

# bind_ops.cpp: each kernel (backend="cuda", on GPU 0) and its scalar reference
# (backend="reference"), for tests.
class _Ops:
    def linear(self, x: _Floats, weight: npt.ArrayLike, dtype: str = "f32",
               row_scales: _Floats | None = None, bias: _Floats | None = None,
               activation: str | None = None, *, backend: str) -> _Result: ...
    def layer_norm(self, x: _Floats, residual: _Floats | None, gamma: _Floats, beta: _Floats,
                   epsilon: float, *, backend: str) -> _Result: ...
    def softmax(self, x: _Floats, *, backend: str) -> _Result: ...
    def activation(self, kind: str, x: _Floats, *, backend: str) -> _Result: ...
    def add(self, x: _Floats, y: _Floats, *, backend: str) -> _Result: ...
    def embedding(self, ids: npt.ArrayLike, positions: npt.ArrayLike, table: npt.ArrayLike,
                  dtype: str, row_scales: _Floats | None, scale: float,
                  position_table: _Floats, *, backend: str) -> _Result: ...
    def attention(self, q: _Floats, k: _Floats, v: _Floats, heads: int,
                  kv_index: npt.ArrayLike | None, kv_lengths: npt.ArrayLike, scale: float,
                  probabilities: bool = False, *, kv_heads: int | None = None,
                  causal: bool = False, backend: str) -> _Result | tuple[_Result, _Result]: ...
    def cached_attention(self, q: _Floats, keys: _Floats, values: _Floats,
                         ancestry: npt.ArrayLike, heads: int, scale: float, *,
                         kv_heads: int | None = None, backend: str) -> _Result: ...

ops: _Ops
