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

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>

#include "format/model_config.h"
#include "tensor/tensor.h"
#include "tensor/thread_pool.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::ops {

// A weight matrix in the layout the selected CPU kernels read (kernels/cpu/kernels.h,
// pack_weight), packed once at construction into memory owned here; variants that read the
// stored layout (scalar) keep using the matrix in place. Keeps the view of the stored matrix
// (its per-row int8 scales stay in the model file's private copy).
class LinearWeight {
 public:
  // Called with each slice of the stored matrix (a few MB) as soon as it is packed, so the
  // caller can release its pages before the next slice is read; never called when the
  // kernels use the matrix in place.
  using PackedSlice = std::function<void(const void* data, uint64_t bytes)>;

  explicit LinearWeight(const tensor::WeightMatrix& matrix, const PackedSlice& packed_slice = {});

  const tensor::WeightMatrix& matrix() const { return matrix_; }
  // What the kernels read: the packed copy, or the stored matrix.
  const void* kernel_data() const { return packed_ ? packed_.get() : matrix_.data; }
  bool packed() const { return packed_ != nullptr; }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  tensor::WeightMatrix matrix_;
  std::unique_ptr<void, Free> packed_;
};

void linear(const tensor::Tensor& x, const LinearWeight& weight, const float* bias,
            tensor::Tensor& y, const tensor::ThreadPool& pool,
            std::optional<format::Activation> activation = std::nullopt,
            const tensor::Tensor* residual = nullptr);

// The same into caller-owned memory (no allocation, no fused pass): y: [x.rows(),
// out_features] row-major, not overlapping x.
void linear(const tensor::Tensor& x, const LinearWeight& weight, const float* bias, float* y, const tensor::ThreadPool& pool);

}  // namespace pytransformer::ops
