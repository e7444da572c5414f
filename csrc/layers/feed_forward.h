// Position-wise feed-forward network: down(activation(up(x))), with the weights
// `<scope>.ffn_up` [ffn, d] and `<scope>.ffn_down` [d, ffn] (+ biases when model.linear_bias).
#pragma once

#include <string>

#include "format/model_file.h"
#include "layers/linear.h"
#include "tensor/tensor.h"
#include "ops/device.h"

namespace pytransformer::layers {

class FeedForward {
 public:
  FeedForward(const format::ModelFile& file, const std::string& scope, const ops::Device& device);

  // x: [..., d] -> out: [..., d] (out must not alias x). accumulate: out += ffn(x) instead
  // (out already holds [..., d]: the pre-norm residual connection, added while writing).
  // hidden: the caller's buffer for the inner activations, resized to [..., ffn].
  void forward(const tensor::Tensor& x, tensor::Tensor& out, tensor::Tensor& hidden,
               const ops::Device& device, bool accumulate = false) const;

 private:
  format::Activation activation_;
  Linear up_, down_;
};

}  // namespace pytransformer::layers
