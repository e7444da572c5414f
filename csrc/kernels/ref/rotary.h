// Reference rotary position embeddings (RoPE): the cos/sin tables, and their application, in
// place, to the query or key vectors of attention heads.
//
//   inverse frequency i (0 <= i < rotary_dim / 2): 1 / base^(2i / rotary_dim)
//   angle(p, i) = p * inverse_frequency(i)
// computed in f32 as transformers computes them (its rotary embedding's inv_freq, then
// position * inv_freq and cos/sin, all f32), so long positions agree with it.
//
// Each rotated pair (a, b) becomes (a cos - b sin, a sin + b cos). The pairs of a head are
//   HALF_SPLIT:  (i, i + rotary_dim / 2)  transformers' rotate_half (Llama, Qwen2 checkpoints)
//   INTERLEAVED: (2i, 2i + 1)             Meta's layout, which GGUF's llama Q/K are stored in
// and the dimensions of a head past rotary_dim are left as they are.
#pragma once

#include <cstdint>

namespace pytransformer::kernels::ref {

enum class RotaryLayout { HALF_SPLIT, INTERLEAVED };

// Where pair i's members lie within a head: `i * first_step` and that plus `second_offset`.
// The one definition of the layouts, for every device's kernel.
struct RotaryPairs {
  int64_t first_step;
  int64_t second_offset;
};
inline RotaryPairs rotary_pairs(RotaryLayout layout, int64_t rotary_dim) {
  return layout == RotaryLayout::HALF_SPLIT ? RotaryPairs{1, rotary_dim / 2} : RotaryPairs{2, 1};
}

// cos, sin: [positions, rotary_dim / 2], row p for position p. rotary_dim even, > 0.
void rotary_tables(double base, int64_t rotary_dim, int64_t positions, float* cos, float* sin);

// x: [rows, heads * head_dim] row-major, rotated in place; row r is at position positions[r]
// (each < the tables' positions). rotary_dim even, <= head_dim.
void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t rotary_dim,
                  const int32_t* positions, const float* cos, const float* sin,
                  RotaryLayout layout);

}  // namespace pytransformer::kernels::ref
