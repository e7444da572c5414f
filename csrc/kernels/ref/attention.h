// Reference scaled dot-product attention over heads laid side by side in the columns, with
// grouped-query attention: a row of Q or the output holds `heads` slices of `head_dim` values
// (head h at columns [h * head_dim, (h + 1) * head_dim)), a row of K or V holds `kv_heads`
// such slices (kv_heads divides heads; kv_heads == heads is multi-head attention). Query head
// h reads kv head g = h / (heads / kv_heads). For each query and head:
//   p = softmax(scale * q . k_j[g] over the keys j the query may see); out = sum_j p_j v_j[g]
// Scores and outputs accumulate in f32 in a fixed order; the softmax sum in double.
#pragma once

#include <cstdint>

namespace pytransformer::kernels::ref {

// Full sequences with key padding and an optional causal mask.
// q:   [batch, q_len, heads * head_dim] row-major.
// k,v: [kv_batch, kv_len, kv_heads * head_dim] row-major.
// kv_index:   [batch] kv batch entry each query batch entry reads, or nullptr for the identity
//             (the decoder's cross-attention maps hypotheses to their source sentence).
// kv_lengths: [kv_batch] valid keys of each entry (1..kv_len); later keys are padding.
// causal (requires q_len == kv_len): query i sees only keys j <= i as well, so it sees the
// keys j < min(kv_lengths[entry], i + 1) (a prompt's prefill).
// out: [batch, q_len, heads * head_dim].
// probabilities: optional [batch, heads, q_len, kv_len]; entries of padding keys and of
// masked (causal-future) keys are 0.
void attention(const float* q, const float* k, const float* v, int64_t batch, int64_t q_len,
               int64_t kv_len, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const int32_t* kv_index, const int64_t* kv_lengths, bool causal, float scale,
               float* out, float* probabilities);

// One decoder step of self-attention over the step-chunked cache.
// q: [n, heads * head_dim], the queries of the n hypotheses at step `steps - 1`.
// step_keys[s], step_values[s] (s < steps): the chunk of step s, rows of kv_heads * head_dim;
// hypothesis i reads row ancestry[i * ancestry_stride + s] of chunk s (its ancestor's row,
// its own row at the last step).
// out: [n, heads * head_dim].
void cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, int64_t steps, const float* const* step_keys,
                      const float* const* step_values, const int32_t* ancestry,
                      int64_t ancestry_stride, float scale, float* out);

}  // namespace pytransformer::kernels::ref
