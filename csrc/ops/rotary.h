// Rotary position embeddings applied in place to the query or key rows of attention heads.
// x: [rows, heads * head_dim] (any leading shape whose rows are positions); positions [rows]:
// host, each below the tables' positions. cos, sin: [positions, rotary_dim / 2] tensors in the
// device's memory (kernels/ref/rotary.h's rotary_tables, uploaded once by the layer that owns
// them). rotary_dim: even, <= head_dim.
#pragma once

#include <cstdint>

#include "kernels/ref/rotary.h"
#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::ops {

void apply_rotary(tensor::Tensor& x, int64_t heads, int64_t rotary_dim, const int32_t* positions,
                  const tensor::Tensor& cos, const tensor::Tensor& sin,
                  kernels::ref::RotaryLayout layout, const Device& device);

}  // namespace pytransformer::ops
