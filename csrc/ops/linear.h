// y = x W^T + b over the last dimension, on the device of the model (ops/device.h).
// x: [..., in_features]; weight: [out_features, in_features] (any stored dtype);
// bias: [out_features] (device memory: Device::weight) or nullptr; y: resized to
// [..., out_features] on the device (must not alias x).
// Fused output pass (at most one of): activation: y = activation(x W^T + b);
// residual: y = residual + (x W^T + b), residual of y's shape, and may be &y itself (the
// pre-norm residual connection in place).
// f32/f16/bf16 weights compute in f32 (kernels/ref/linear.h); int8 weights quantise the rows
// of x on the fly and multiply in int32 (kernels/ref/linear_int8.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "format/model_config.h"
#include "ops/device.h"
#include "tensor/tensor.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::ops {

// A weight matrix prepared once for a device's linear kernels (Device::prepare_matrix: packed
// for the selected CPU kernels, uploaded to a GPU). Keeps the view of the stored matrix (its
// shape and dtype; its per-row int8 scales stay in the model file's private copy on the CPU).
class LinearWeight {
 public:
  LinearWeight(const tensor::WeightMatrix& matrix, const Device& device,
               const ReleaseSlice& release = {});

  // The matrices `parts` (one dtype, one width, one int8 input_scale) stacked by rows as one
  // weight of their rows' sum (the product y = [x W_0^T | x W_1^T | ...]: fewer, larger
  // products), or nullptr where they differ in any of these or the device's memory is not the
  // host's. Their rows are copied into memory owned here (freed once a device has packed them);
  // release: called with each part's stored bytes once copied.
  static std::unique_ptr<LinearWeight> stacked(const std::vector<tensor::WeightMatrix>& parts,
                                               const Device& device,
                                               const ReleaseSlice& release = {});

  // The rows ids (each < rows) of this weight, in that order, as a weight of its own
  // (Device::select_rows; int8 row scales copied), or nullptr where the device does not
  // select rows. Its matrix() has no stored bytes (data is null).
  std::unique_ptr<LinearWeight> select_rows(const std::vector<int32_t>& ids,
                                            const Device& device) const;

  const tensor::WeightMatrix& matrix() const { return matrix_; }
  const DeviceMatrix& prepared() const { return *prepared_; }

 private:
  LinearWeight() = default;

  tensor::WeightMatrix matrix_;
  std::unique_ptr<DeviceMatrix> prepared_;
  std::vector<float> owned_scales_;  // row scales of a selection or a stack (int8)
  std::vector<unsigned char> stacked_rows_;  // a stack's stored rows, while a device reads them
};

void linear(const tensor::Tensor& x, const LinearWeight& weight, const float* bias,
            tensor::Tensor& y, const Device& device,
            std::optional<format::Activation> activation = std::nullopt,
            const tensor::Tensor* residual = nullptr);

// The same into caller-owned device memory (no fused pass): y: [x.rows(), out_features]
// row-major, not overlapping x (a step's keys into the cache, logits).
void linear(const tensor::Tensor& x, const LinearWeight& weight, const float* bias, float* y,
            const Device& device);

// Columns [first, first + width) of the rows of x [rows, x_width] (a stacked product's part)
// into y: [rows, width] row-major in device memory, not overlapping x.
void copy_columns(const tensor::Tensor& x, int64_t first, int64_t width, float* y,
                  const Device& device);

}  // namespace pytransformer::ops
