"""The Llama family's kernels (issue 11) against transformers' own modules: RMSNorm
(LlamaRMSNorm), rotary embeddings (LlamaRotaryEmbedding + apply_rotary_pos_emb, half-split;
the interleaved layout through the permutation GGUF's Q/K rows are stored in), SwiGLU
(LlamaMLP's act(gate) * up) and grouped-query attention with the causal mask (Llama's
eager_attention_forward: repeat_kv and an additive mask). The scalar references (kernels/ref) are reached through the CUDA
module's test ops with backend='reference', which run without a GPU; every CPU variant is
checked against the same references by test_kernels.py, and the CUDA kernels by
test_cuda_ops.py."""

from __future__ import annotations

import numpy as np
import pytest

from cuda_support import cuda, needs_module

torch = pytest.importorskip("torch")
modeling_llama = pytest.importorskip("transformers.models.llama.modeling_llama")
LlamaConfig = pytest.importorskip("transformers").LlamaConfig

pytestmark = [needs_module]


@pytest.mark.parametrize("rows,dim,epsilon", [(1, 8, 1e-5), (4, 576, 1e-5), (3, 1031, 1e-6)])
def test_rms_norm_matches_transformers(rows: int, dim: int, epsilon: float) -> None:
    rng = np.random.default_rng(dim)
    x = (rng.standard_normal((rows, dim)) * 3).astype(np.float32)
    gamma = rng.standard_normal(dim).astype(np.float32)
    norm = modeling_llama.LlamaRMSNorm(dim, eps=epsilon)
    with torch.no_grad():
        norm.weight.copy_(torch.from_numpy(gamma))
        want = norm(torch.from_numpy(x)).numpy()
    got = cuda.ops.rms_norm(x, gamma, epsilon, backend="reference")
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def _transformers_rotary(x: np.ndarray, heads: int, head_dim: int, positions: np.ndarray,
                         base: float) -> np.ndarray:
    config = LlamaConfig(hidden_size=heads * head_dim, num_attention_heads=heads,
                         rope_theta=base, max_position_embeddings=8192)
    rotary = modeling_llama.LlamaRotaryEmbedding(config)
    q = torch.from_numpy(x).view(1, len(positions), heads, head_dim).transpose(1, 2)
    position_ids = torch.from_numpy(positions.astype(np.int64))[None]
    cos, sin = rotary(q, position_ids)
    rotated, _ = modeling_llama.apply_rotary_pos_emb(q, q, cos, sin)
    return rotated.transpose(1, 2).reshape(len(positions), heads * head_dim).numpy()


# Llama rotates whole heads in transformers (rotary_dim < head_dim, which GGUF metadata may
# state, is covered by test_kernels.cpp's contract checks).
@pytest.mark.parametrize("heads,head_dim,base", [(2, 64, 10000.0), (3, 128, 500000.0),
                                                 (1, 8, 100.0)])
def test_rotary_matches_transformers_in_both_layouts(heads: int, head_dim: int,
                                                     base: float) -> None:
    rng = np.random.default_rng(heads * head_dim)
    positions = np.array([0, 1, 2, 100, 2047, 8000], np.int32)
    x = rng.standard_normal((len(positions), heads * head_dim)).astype(np.float32)
    rotary_dim = head_dim
    want = _transformers_rotary(x, heads, head_dim, positions, base)
    got = cuda.ops.rotary(x, heads, rotary_dim, positions, base, 8192, False,
                          backend="reference")
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    # The interleaved layout is the half-split one seen through the permutation of each head's
    # first rotary_dim dimensions that takes (i, i + rotary_dim / 2) to (2i, 2i + 1).
    pairs = rotary_dim // 2
    order = np.arange(head_dim)
    order[:rotary_dim] = np.stack([np.arange(pairs), np.arange(pairs) + pairs], 1).reshape(-1)
    columns = (np.arange(heads)[:, None] * head_dim + order[None]).reshape(-1)
    interleaved = cuda.ops.rotary(x[:, columns], heads, rotary_dim, positions, base, 8192, True,
                                  backend="reference")
    np.testing.assert_array_equal(interleaved, got[:, columns])


def test_swiglu_matches_transformers_mlp_activation() -> None:
    rng = np.random.default_rng(7)
    gate, up = (rng.standard_normal((2, 5, 96)) * 4).astype(np.float32)
    want = (torch.nn.functional.silu(torch.from_numpy(gate)) * torch.from_numpy(up)).numpy()
    got = cuda.ops.gated_activation("swish", np.concatenate([gate, up], axis=1),
                                    backend="reference")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _transformers_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int,
                            kv_heads: int, visible: np.ndarray,
                            scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Llama's eager attention on q [batch, q_len, heads * head_dim] and k, v
    [batch, kv_len, kv_heads * head_dim]; visible [batch, q_len, kv_len] says which keys each
    query sees. Returns out [batch, q_len, heads * head_dim], weights [batch, heads, q_len,
    kv_len]."""
    batch, q_len, width = q.shape
    head_dim, kv_len = width // heads, k.shape[1]
    module = type("Module", (), {"num_key_value_groups": heads // kv_heads, "training": False})
    mask = np.where(visible, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None]

    def split(x: np.ndarray, count: int) -> torch.Tensor:
        return torch.from_numpy(x).view(batch, -1, count, head_dim).transpose(1, 2)

    with torch.no_grad():
        out, weights = modeling_llama.eager_attention_forward(
            module, split(q, heads), split(k, kv_heads), split(v, kv_heads),
            torch.from_numpy(mask), scale)
    return out.reshape(batch, q_len, width).numpy(), weights.numpy()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads,kv_heads,head_dim,kv_len", [(4, 4, 8, 6), (4, 2, 16, 9),
                                                            (6, 1, 64, 5), (9, 3, 5, 12)])
def test_grouped_query_attention_matches_transformers(heads: int, kv_heads: int, head_dim: int,
                                                      kv_len: int, causal: bool) -> None:
    rng = np.random.default_rng(heads * 100 + kv_heads * 10 + kv_len)
    batch, q_len = 3, kv_len if causal else 4
    q = rng.standard_normal((batch, q_len, heads * head_dim)).astype(np.float32)
    k, v = rng.standard_normal((2, batch, kv_len, kv_heads * head_dim)).astype(np.float32)
    lengths = np.array([kv_len, 1, (kv_len + 1) // 2], np.int64)  # key padding too
    scale = float(np.float32(1 / np.sqrt(head_dim)))
    keys, queries = np.arange(kv_len), np.arange(q_len)[:, None]
    visible = (keys < lengths[:, None, None]) & ((keys <= queries) if causal else True)
    want, want_p = _transformers_attention(q, k, v, heads, kv_heads, visible, scale)
    got, got_p = cuda.ops.attention(q, k, v, heads, None, lengths, scale, True,
                                    kv_heads=kv_heads, causal=causal, backend="reference")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_p, want_p, rtol=1e-5, atol=1e-7)
    assert not got_p[~np.broadcast_to(visible[:, None], got_p.shape)].any()  # masked: exactly 0


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2), (6, 1)])
def test_cached_grouped_query_attention_matches_transformers(heads: int, kv_heads: int) -> None:
    """One decoding step over the chunked cache: hypothesis i's keys are the rows its ancestry
    picks, one per step, and its single query sees them all."""
    rng = np.random.default_rng(heads * 10 + kv_heads)
    n, steps, rows, head_dim = 3, 7, 5, 16
    q = rng.standard_normal((n, heads * head_dim)).astype(np.float32)
    keys, values = rng.standard_normal((2, steps, rows, kv_heads * head_dim)).astype(np.float32)
    ancestry = rng.integers(0, rows, (n, steps)).astype(np.int32)
    gathered_k = keys[np.arange(steps), ancestry]  # [n, steps, kv_width]
    gathered_v = values[np.arange(steps), ancestry]
    want, _ = _transformers_attention(q[:, None], gathered_k, gathered_v, heads, kv_heads,
                                      np.ones((n, 1, steps), bool), 0.25)
    got = cuda.ops.cached_attention(q, keys, values, ancestry, heads, 0.25, kv_heads=kv_heads,
                                    backend="reference")
    np.testing.assert_allclose(got, want[:, 0], rtol=1e-5, atol=1e-6)
