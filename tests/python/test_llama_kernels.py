"""The Llama family's kernels (issue 11) against transformers' own modules: RMSNorm
(LlamaRMSNorm), rotary embeddings (LlamaRotaryEmbedding + apply_rotary_pos_emb, half-split;
the interleaved layout through the permutation GGUF's Q/K rows are stored in) and SwiGLU
(LlamaMLP's act(gate) * up). The scalar references (kernels/ref) are reached through the CUDA
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
