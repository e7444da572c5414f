"""Each CUDA kernel against its scalar reference (csrc/kernels/ref) on awkward shapes: sizes of
one, odd sizes, sizes that leave tails in every tile and lane, padding and every weight dtype
(int8 weights against the quantised-activation reference, kernels/ref/linear_int8.h).
Needs a GPU (skipped with the backend's reason elsewhere).

Tolerances: kernels that only multiply and add (linear, embedding, add, attention's dot products
and sums) reproduce the reference's order of operations and must match bit for bit; results
that go through exp, erf or tanh, or through a double-precision sum accumulated in another order
(softmax, LayerNorm, attention weights), are compared within a few float ulps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cuda_support import cuda, needs_gpu, needs_module

pytestmark = [needs_module, needs_gpu]

ACTIVATIONS = [None, "relu", "swish", "gelu", "gelu_tanh"]
DTYPES = ["f32", "f16", "bf16", "int8"]


def stored_weight(values: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    """values as the file stores them: (array, row scales for int8)."""
    if dtype == "f32":
        return values.astype(np.float32), None
    if dtype == "f16":
        return values.astype(np.float16).view(np.uint16), None
    if dtype == "bf16":
        return (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16), None
    scales = (np.abs(values).max(axis=1) / 127.0 + 1e-3).astype(np.float32)
    return np.round(values / scales[:, None]).clip(-127, 127).astype(np.int8), scales


def both(op, *args, **kwargs):
    return op(*args, backend="cuda", **kwargs), op(*args, backend="reference", **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 7, 5), (17, 33, 19), (1, 64, 300), (40, 130, 70)])
def test_linear_is_bit_identical_to_the_reference(dtype: str, m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    x = rng.standard_normal((m, k)).astype(np.float32)
    weight, scales = stored_weight(rng.standard_normal((n, k)), dtype)
    bias = rng.standard_normal(n).astype(np.float32)
    for with_bias, activation in itertools.product([False, True], ACTIVATIONS):
        gpu, ref = both(cuda.ops.linear, x, weight, dtype, scales, bias if with_bias else None,
                        activation)
        if activation in (None, "relu"):
            np.testing.assert_array_equal(gpu, ref)
        else:  # the epilogue's exp/erf/tanh may round differently from libm in the last bit
            np.testing.assert_allclose(gpu, ref, rtol=1e-6, atol=1e-7)


def test_int8_linear_quantises_rows_like_the_reference() -> None:
    """Rows of zeros and of subnormals (scale 1, all zeros), ties rounded half to even, and
    values clamped at +-127, as kernels/ref/linear_int8.h states."""
    x = np.array([[0.0] * 6,
                  [1e-40, -1e-40, 0.0, 1e-41, 0.0, 0.0],
                  [127.0, 0.5, 1.5, 2.5, -0.5, -126.5],
                  [3.0, -1.0, 0.25, 7.0, -7.0, 1e-3]], np.float32)
    rng = np.random.default_rng(3)
    weight, scales = stored_weight(rng.standard_normal((5, 6)), "int8")
    bias = rng.standard_normal(5).astype(np.float32)
    for activation in (None, "relu"):
        gpu, ref = both(cuda.ops.linear, x, weight, "int8", scales, bias, activation)
        np.testing.assert_array_equal(gpu, ref)


@pytest.mark.skipif(cuda is None or not cuda.cublas_available, reason="built without cuBLAS")
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_through_cublas_agrees_with_the_reference(dtype: str) -> None:
    rng = np.random.default_rng(7)
    for m, k, n in [(1, 1, 1), (5, 33, 17), (64, 512, 300)]:
        x = rng.standard_normal((m, k)).astype(np.float32)
        weight, scales = stored_weight(rng.standard_normal((n, k)), dtype)
        bias = rng.standard_normal(n).astype(np.float32)
        gpu = cuda.ops.linear(x, weight, dtype, scales, bias, "gelu", backend="cublas")
        ref = cuda.ops.linear(x, weight, dtype, scales, bias, "gelu", backend="reference")
        np.testing.assert_allclose(gpu, ref, rtol=1e-5, atol=1e-5 * np.sqrt(k))


@pytest.mark.parametrize("rows,dim", [(1, 1), (5, 7), (3, 64), (33, 257), (2, 1000)])
@pytest.mark.parametrize("with_residual", [False, True])
def test_layer_norm(rows: int, dim: int, with_residual: bool) -> None:
    rng = np.random.default_rng(rows * dim)
    x = (rng.standard_normal((rows, dim)) * 3 + 1).astype(np.float32)
    residual = rng.standard_normal((rows, dim)).astype(np.float32) if with_residual else None
    gamma = rng.standard_normal(dim).astype(np.float32)
    beta = rng.standard_normal(dim).astype(np.float32)
    gpu, ref = both(cuda.ops.layer_norm, x, residual, gamma, beta, 1e-5)
    np.testing.assert_allclose(gpu, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 2), (4, 31), (2, 1000), (1, 5000)])
def test_softmax(rows: int, cols: int) -> None:
    rng = np.random.default_rng(cols)
    x = (rng.standard_normal((rows, cols)) * 4).astype(np.float32)
    gpu, ref = both(cuda.ops.softmax, x)
    np.testing.assert_allclose(gpu, ref, rtol=1e-6, atol=1e-9)


def test_softmax_too_wide_for_one_block_is_an_error_not_a_crash() -> None:
    with pytest.raises(RuntimeError, match="columns"):
        cuda.ops.softmax(np.zeros((1, 1 << 20), np.float32), backend="cuda")


@pytest.mark.parametrize("kind", ["relu", "swish", "gelu", "gelu_tanh"])
def test_activation(kind: str) -> None:
    x = np.concatenate([np.linspace(-12, 12, 997), [0.0, -0.0, 1e-30, -1e-30, 80.0, -80.0]])
    x = x.astype(np.float32)
    gpu, ref = both(cuda.ops.activation, kind, x)
    if kind == "relu":
        np.testing.assert_array_equal(gpu, ref)
    else:
        np.testing.assert_allclose(gpu, ref, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("count", [1, 7, 256, 1001])
def test_add_is_exact(count: int) -> None:
    rng = np.random.default_rng(count)
    x, y = rng.standard_normal((2, count)).astype(np.float32)
    gpu, ref = both(cuda.ops.add, x, y)
    np.testing.assert_array_equal(gpu, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count,dim", [(1, 2), (5, 6), (9, 130)])
def test_embedding_is_exact(dtype: str, count: int, dim: int) -> None:
    rng = np.random.default_rng(count * dim)
    table, scales = stored_weight(rng.standard_normal((11, dim)), dtype)
    positions_table = rng.standard_normal((20, dim)).astype(np.float32)
    ids = rng.integers(0, 11, count).astype(np.int32)
    positions = rng.integers(0, 20, count).astype(np.int64)
    gpu, ref = both(cuda.ops.embedding, ids, positions, table, dtype, scales, 2.5, positions_table)
    np.testing.assert_array_equal(gpu, ref)


ATTENTION_SHAPES = [  # batch, q_len, kv_len, heads, head_dim
    (1, 1, 1, 1, 1), (2, 4, 5, 2, 3), (3, 9, 13, 4, 8), (1, 3, 40, 2, 64), (2, 1, 7, 8, 13)]


@pytest.mark.parametrize("batch,q_len,kv_len,heads,head_dim", ATTENTION_SHAPES)
def test_attention_with_key_padding(batch: int, q_len: int, kv_len: int, heads: int,
                                    head_dim: int) -> None:
    rng = np.random.default_rng(batch + q_len * 10 + kv_len * 100)
    width = heads * head_dim
    q = rng.standard_normal((batch, q_len, width)).astype(np.float32)
    k, v = rng.standard_normal((2, batch, kv_len, width)).astype(np.float32)
    lengths = rng.integers(1, kv_len + 1, batch).astype(np.int64)
    scale = np.float32(1 / np.sqrt(head_dim))
    (gpu, gpu_p), (ref, ref_p) = both(cuda.ops.attention, q, k, v, heads, None, lengths, scale,
                                      True)
    np.testing.assert_allclose(gpu, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gpu_p, ref_p, rtol=1e-6, atol=1e-9)
    for b in range(batch):
        assert not gpu_p[b, :, :, lengths[b]:].any()  # padding keys get exactly 0


def test_cross_attention_reads_each_hypothesis_sentence() -> None:
    """kv_index maps hypotheses to source sentences, as the decoder's cross-attention does."""
    rng = np.random.default_rng(5)
    heads, head_dim, kv_batch, kv_len = 4, 16, 3, 11
    q = rng.standard_normal((7, 1, heads * head_dim)).astype(np.float32)
    k, v = rng.standard_normal((2, kv_batch, kv_len, heads * head_dim)).astype(np.float32)
    index = np.array([2, 0, 0, 1, 2, 2, 1], np.int32)
    lengths = np.array([11, 4, 7], np.int64)
    (gpu, gpu_p), (ref, ref_p) = both(cuda.ops.attention, q, k, v, heads, index, lengths, 0.25,
                                      True)
    np.testing.assert_allclose(gpu, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gpu_p, ref_p, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n,steps,heads,head_dim", [(1, 1, 1, 4), (5, 4, 2, 3), (3, 17, 4, 16)])
def test_cached_attention_follows_the_ancestry(n: int, steps: int, heads: int,
                                               head_dim: int) -> None:
    rng = np.random.default_rng(n * steps)
    rows, width = 6, heads * head_dim
    q = rng.standard_normal((n, width)).astype(np.float32)
    keys, values = rng.standard_normal((2, steps, rows, width)).astype(np.float32)
    stride = steps + 3  # the table is wider than the steps run so far
    ancestry = rng.integers(0, rows, (n, stride)).astype(np.int32)
    gpu, ref = both(cuda.ops.cached_attention, q, keys, values, ancestry, heads, 0.3)
    np.testing.assert_allclose(gpu, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads,kv_heads,head_dim,kv_len", [(2, 2, 3, 1), (4, 2, 8, 13),
                                                            (8, 1, 64, 40), (6, 3, 13, 7)])
def test_grouped_query_attention_with_causal_mask(heads: int, kv_heads: int, head_dim: int,
                                                  kv_len: int, causal: bool) -> None:
    rng = np.random.default_rng(heads * 100 + kv_heads * 10 + kv_len + causal)
    batch, q_len = 3, kv_len if causal else 5
    q = rng.standard_normal((batch, q_len, heads * head_dim)).astype(np.float32)
    k, v = rng.standard_normal((2, batch, kv_len, kv_heads * head_dim)).astype(np.float32)
    lengths = rng.integers(1, kv_len + 1, batch).astype(np.int64)
    scale = np.float32(1 / np.sqrt(head_dim))
    (gpu, gpu_p), (ref, ref_p) = both(cuda.ops.attention, q, k, v, heads, None, lengths, scale,
                                      True, kv_heads=kv_heads, causal=causal)
    np.testing.assert_allclose(gpu, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gpu_p, ref_p, rtol=1e-6, atol=1e-9)
    keys, queries = np.arange(kv_len), np.arange(q_len)[:, None]
    visible = (keys < lengths[:, None, None]) & ((keys <= queries) if causal else True)
    assert not gpu_p[~np.broadcast_to(visible[:, None], gpu_p.shape)].any()  # masked: exactly 0


@pytest.mark.parametrize("n,steps,heads,kv_heads,head_dim", [(1, 1, 2, 1, 4), (5, 4, 4, 2, 3),
                                                             (3, 17, 8, 1, 16)])
def test_cached_grouped_query_attention(n: int, steps: int, heads: int, kv_heads: int,
                                        head_dim: int) -> None:
    rng = np.random.default_rng(n * steps + kv_heads)
    rows = 6
    q = rng.standard_normal((n, heads * head_dim)).astype(np.float32)
    keys, values = rng.standard_normal((2, steps, rows, kv_heads * head_dim)).astype(np.float32)
    ancestry = rng.integers(0, rows, (n, steps + 2)).astype(np.int32)
    gpu, ref = both(cuda.ops.cached_attention, q, keys, values, ancestry, heads, 0.3,
                    kv_heads=kv_heads)
    np.testing.assert_allclose(gpu, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rows,dim", [(1, 1), (3, 17), (8, 576), (2, 1031)])
def test_rms_norm(rows: int, dim: int) -> None:
    rng = np.random.default_rng(rows * 100 + dim)
    x = (rng.standard_normal((rows, dim)) * 2).astype(np.float32)
    gamma = rng.standard_normal(dim).astype(np.float32)
    gpu, ref = both(cuda.ops.rms_norm, x, gamma, 1e-5)
    np.testing.assert_allclose(gpu, ref, rtol=1e-6, atol=1e-7)  # double sums in another order


@pytest.mark.parametrize("kind", ["swish", "gelu"])
@pytest.mark.parametrize("rows,width", [(1, 1), (3, 17), (2, 1536)])
def test_gated_activation(kind: str, rows: int, width: int) -> None:
    rng = np.random.default_rng(rows * 100 + width)
    x = (rng.standard_normal((rows, 2 * width)) * 4).astype(np.float32)
    gpu, ref = both(cuda.ops.gated_activation, kind, x)
    np.testing.assert_allclose(gpu, ref, rtol=1e-6, atol=1e-30)  # exp/erf as in test_activation


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("heads,head_dim,rotary_dim", [(1, 2, 2), (3, 64, 64), (2, 80, 32)])
def test_rotary_is_bit_identical_to_the_reference(interleaved: bool, heads: int, head_dim: int,
                                                  rotary_dim: int) -> None:
    rng = np.random.default_rng(heads * 1000 + head_dim + rotary_dim)
    x = rng.standard_normal((5, heads * head_dim)).astype(np.float32)
    positions = np.array([0, 1, 63, 64, 4095], np.int32)
    gpu, ref = both(cuda.ops.rotary, x, heads, rotary_dim, positions, 10000.0, 4096, interleaved)
    np.testing.assert_array_equal(gpu, ref)
