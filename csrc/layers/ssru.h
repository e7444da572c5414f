// Marian's SSRU sub-layer `<scope>.ssru` (docs/format.md, model.decoder_autoregression = ssru):
// the gates [u | g] = x W^T + b from one product (W [2d, d]: the candidate's rows, then the
// forget gate's), then one step of the recurrence (ops/ssru.h, kernels/ref/ssru.h).
#pragma once

#include <cstdint>
#include <string>

#include "format/model_file.h"
#include "layers/linear.h"
#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::layers {

class Ssru {
 public:
  Ssru(const format::ModelFile& file, const std::string& scope, const ops::Device& device);

  // One step for n hypotheses. x: [n, d]. previous: this layer's cells of the last step
  // ([*, d]), nullptr at the first; parent: [n] host, rows of previous. cells: resized to
  // [n, d], this step's (not previous). y: [n, d] overwritten with the output, or
  // y += output when accumulate (the pre-norm residual; y may then be the tensor x came from).
  // gates: scratch, resized to [n, 2d].
  void step(const tensor::Tensor& x, const tensor::Tensor* previous, const int32_t* parent,
            tensor::Tensor& cells, tensor::Tensor& y, bool accumulate, tensor::Tensor& gates,
            const ops::Device& device) const;

 private:
  Linear gates_;
};

}  // namespace pytransformer::layers
