"""The CUDA backend's build, import and device discovery: runs on every machine (no GPU needed).

The module must import without a driver or a GPU and say why it cannot run; asking it for a GPU
then raises RuntimeError("CUDA requested but ..."), never crashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cuda_support import IMPORT_PROBLEM, IN_CI, NVCC, cuda, needs_module
from pytransformer import _core


def test_cpu_module_never_links_cuda_libraries() -> None:
    """_core must load on machines without the CUDA toolkit or driver."""
    binary = Path(_core.__file__).read_bytes()
    for library in (b"libcudart.so", b"libcublas.so", b"libcuda.so"):
        assert library not in binary


def test_cuda_module_is_built_and_linked_where_nvcc_exists() -> None:
    if cuda is not None:
        assert callable(cuda.device_count)
        return
    if NVCC and IN_CI:
        pytest.fail(f"nvcc is at {NVCC} but {IMPORT_PROBLEM}: CI must build the CUDA backend "
                    "(PYTRANSFORMER_CUDA=AUTO pip install ...)")
    pytest.skip(IMPORT_PROBLEM)


@needs_module
def test_device_queries_never_raise() -> None:
    count = cuda.device_count()
    assert isinstance(count, int) and count >= 0
    assert len(cuda.devices()) == count
    problem = cuda.device_problem(0)
    if count == 0:
        assert problem is not None and problem.startswith("CUDA requested but ")
    assert cuda.device_problem(count).startswith("CUDA requested but ")  # past the last device
    assert isinstance(cuda.cublas_available, bool)


@needs_module
def test_without_a_usable_gpu_asking_for_one_raises_a_clear_error() -> None:
    problem = cuda.device_problem(0)
    if problem is None:
        pytest.skip("a GPU is present: nothing to refuse")
    with pytest.raises(RuntimeError, match="^CUDA requested but ") as error:
        cuda.ops.add(np.ones(3, np.float32), np.ones(3, np.float32), backend="cuda")
    assert str(error.value) == problem


@needs_module
def test_ops_reject_bad_arguments_before_touching_the_gpu() -> None:
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="backend must be"):
        cuda.ops.softmax(x, backend="tpu")
    with pytest.raises(ValueError, match="x must be"):
        cuda.ops.linear(np.ones((2, 4), np.float32), x, backend="reference")
    with pytest.raises(ValueError, match="unknown activation"):
        cuda.ops.activation("tanh", x, backend="reference")
    with pytest.raises(ValueError, match="int8 weights need row_scales"):
        cuda.ops.linear(x, np.ones((2, 3), np.int8), "int8", backend="reference")


@needs_module
def test_reference_backend_of_the_ops_binding() -> None:
    """The binding's host path (used as the oracle by test_cuda_ops.py) runs the references."""
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    probabilities = cuda.ops.softmax(x, backend="reference")
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    weight = np.array([[1.0, -1.0, 0.5]], np.float32)
    y = cuda.ops.linear(x, weight, bias=np.array([0.25], np.float32), activation="relu",
                        backend="reference")
    np.testing.assert_array_equal(y, [[0.75], [0.25]])
