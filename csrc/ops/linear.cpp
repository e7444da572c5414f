#include "ops/linear.h"

#include <stdexcept>
#include <string>

#include "ops/device_checks.h"

namespace pytransformer::ops {
namespace {

void check_input(const tensor::Tensor& x, const tensor::WeightMatrix& weight, const Device& device) {
  if (x.rank() < 1 || x.dim(-1) != weight.cols) {
    throw std::logic_error("linear: input " + x.shape_string() + " does not match a weight of " +
                           std::to_string(weight.cols) + " columns");
  }
  check_on_device("linear", x, device);
}

}  // namespace

LinearWeight::LinearWeight(const tensor::WeightMatrix& matrix, const Device& device,
                           const ReleaseSlice& release)
    : matrix_(matrix), prepared_(device.prepare_matrix(matrix, release)) {}

std::unique_ptr<LinearWeight> LinearWeight::select_rows(const std::vector<int32_t>& ids,
                                                       const Device& device) const {
  for (const int32_t id : ids) {
    if (id < 0 || id >= matrix_.rows) {
      throw std::logic_error("LinearWeight::select_rows: row " + std::to_string(id) +
                             " outside a matrix of " + std::to_string(matrix_.rows) + " rows");
    }
  }
  const int64_t count = static_cast<int64_t>(ids.size());
  std::unique_ptr<DeviceMatrix> prepared = device.select_rows(matrix_, *prepared_, ids.data(), count);
  if (!prepared) return nullptr;
  std::unique_ptr<LinearWeight> selected(new LinearWeight());
  selected->prepared_ = std::move(prepared);
  selected->matrix_ = matrix_;
  selected->matrix_.data = nullptr;
  selected->matrix_.rows = count;
  if (matrix_.row_scales) {
    for (const int32_t id : ids) selected->selected_scales_.push_back(matrix_.row_scales[id]);
    selected->matrix_.row_scales = selected->selected_scales_.data();
  }
  return selected;
}

void linear(const tensor::Tensor& x, const LinearWeight& weight, const float* bias,
            tensor::Tensor& y, const Device& device, std::optional<format::Activation> activation,
            const tensor::Tensor* residual) {
  const tensor::WeightMatrix& matrix = weight.matrix();
  check_input(x, matrix, device);
  if (&x == &y) throw std::logic_error("linear: output aliases input");
  if (activation && residual) throw std::logic_error("linear: both activation and residual");
  tensor::Shape shape = x.shape();
  shape.back() = matrix.rows;
  if (residual) {
    if (residual->shape() != shape) {
      throw std::logic_error("linear: residual " + residual->shape_string() + " vs output " +
                             x.shape_string() + " x " + std::to_string(matrix.rows));
    }
    check_on_device("linear (residual)", *residual, device);
  }
  if (&y != residual) y.resize(shape, device.allocator());
  LinearOutput output;
  output.bias = bias;
  if (activation) output.activation = &*activation;
  if (residual) output.residual = residual->data();
  device.linear(x.data(), x.rows(), matrix, weight.prepared(), output, y.data());
}

void linear(const tensor::Tensor& x, const LinearWeight& weight, const float* bias, float* y,
            const Device& device) {
  check_input(x, weight.matrix(), device);
  LinearOutput output;
  output.bias = bias;
  device.linear(x.data(), x.rows(), weight.matrix(), weight.prepared(), output, y);
}

}  // namespace pytransformer::ops
