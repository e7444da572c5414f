// A linear map read from the weights `<scope>.<module>.weight` [out, in] (any stored dtype)
// and, when present in the config, `<scope>.<module>.bias` [out], prepared for `device` at
// construction (ops::LinearWeight: packed for the selected CPU kernels, or uploaded to a GPU).
// On the CPU the memory of the weight's bytes as the ModelFile read them is then released
// (ModelFile::release_pages), so the process holds one copy.
#pragma once

#include <memory>
#include <optional>
#include <vector>
#include <string>

#include "format/model_config.h"
#include "format/model_file.h"
#include "tensor/tensor.h"
#include "ops/device.h"
#include "ops/linear.h"

namespace pytransformer::layers {

class Linear {
 public:
  Linear(const format::ModelFile& file, const std::string& scope, const std::string& module,
         bool with_bias, const ops::Device& device);

  // The maps `<scope>.<module>` of `modules` as one (ops::LinearWeight::stacked): y holds
  // their outputs side by side, [..., sum of out_features]. nullptr where they cannot be
  // stacked (ops::LinearWeight::stacked); the caller then keeps them apart.
  static std::unique_ptr<Linear> stacked(const format::ModelFile& file, const std::string& scope,
                                         const std::vector<std::string>& modules, bool with_bias,
                                         const ops::Device& device);

  // x: [..., in_features] -> y: [..., out_features], with ops::linear's fused output pass:
  // y = activation(x W^T + b), or y = residual + (x W^T + b) (residual may be &y).
  void forward(const tensor::Tensor& x, tensor::Tensor& y, const ops::Device& device,
               std::optional<format::Activation> activation = std::nullopt,
               const tensor::Tensor* residual = nullptr) const;
  // x: [..., in_features] -> y: caller-owned [x.rows(), out_features] (ops::linear).
  void forward(const tensor::Tensor& x, float* y, const ops::Device& device) const;
  // The same into host memory (a step's logits): straight into `host` where the device's
  // memory is the host's (a temporary would cost an allocation, zero-fill and copy per step),
  // else computed into `staging` (device memory, kept by the caller) and copied.
  void forward_to_host(const tensor::Tensor& x, float* host, tensor::Tensor& staging,
                       const ops::Device& device) const;

  // The linear map of output features ids (each < out_features, in that order): the rows of
  // the weight and the entries of the bias (a vocabulary shortlist's output layer); nullptr
  // where the device does not select rows or its memory is not the host's.
  std::unique_ptr<Linear> select_rows(const std::vector<int32_t>& ids,
                                      const ops::Device& device) const;

  int64_t out_features() const { return weight_.matrix().rows; }
  int64_t in_features() const { return weight_.matrix().cols; }

 private:
  Linear(ops::LinearWeight weight, std::vector<float> bias);

  ops::LinearWeight weight_;
  const float* bias_ = nullptr;  // device memory
  std::vector<float> owned_bias_;  // a selection's or a stack's bias (host memory is device memory)
};

}  // namespace pytransformer::layers
