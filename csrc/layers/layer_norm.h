// LayerNorm with the weights `<scope>.<module>.gamma` and `.beta` [d_model], on `device`.
#pragma once

#include <string>

#include "format/model_file.h"
#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::layers {

class LayerNorm {
 public:
  LayerNorm(const format::ModelFile& file, const std::string& scope, const std::string& module,
            const ops::Device& device);

  // y = LN(x + residual) (residual optional), x: [..., d_model]; y may be x or residual.
  void forward(const tensor::Tensor& x, const tensor::Tensor* residual, tensor::Tensor& y,
               const ops::Device& device) const;

 private:
  const float* gamma_ = nullptr;  // device memory
  const float* beta_ = nullptr;
  double epsilon_ = 0.0;
};

}  // namespace pytransformer::layers
