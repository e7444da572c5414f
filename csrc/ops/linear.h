// y = x W^T + b over the last dimension, through the selected CPU kernels (kernels/cpu/).
// x: [..., in_features]; weight: [out_features, in_features] (any stored dtype);
// bias: [out_features] or nullptr; y: resized to [..., out_features] (must not alias x).
// Fused output pass (at most one of): activation: y = activation(x W^T + b);
// residual: y = residual + (x W^T + b), residual of y's shape, and may be &y itself (the
// pre-norm residual connection in place).
// f32/f16/bf16 weights compute in f32 (kernels/ref/linear.h); int8 weights quantise the rows
// of x on the fly and multiply in int32 (kernels/ref/linear_int8.h).
// The output columns are split between the pool's threads (results do not depend on it).
#pragma once

#include <optional>

#include "format/model_config.h"
#include "tensor/tensor.h"
#include "tensor/thread_pool.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::ops {

void linear(const tensor::Tensor& x, const tensor::WeightMatrix& weight, const float* bias,
            tensor::Tensor& y, const tensor::ThreadPool& pool,
            std::optional<format::Activation> activation = std::nullopt,
            const tensor::Tensor* residual = nullptr);

// The same into caller-owned memory (no allocation, no fused pass): y: [x.rows(),
// out_features] row-major, not overlapping x.
void linear(const tensor::Tensor& x, const tensor::WeightMatrix& weight, const float* bias,
            float* y, const tensor::ThreadPool& pool);

}  // namespace pytransformer::ops
