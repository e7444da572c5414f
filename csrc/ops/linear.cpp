#include "ops/linear.h"

#include <cstring>
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

std::unique_ptr<LinearWeight> LinearWeight::stacked(const std::vector<tensor::WeightMatrix>& parts,
                                                   const Device& device,
                                                   const ReleaseSlice& release) {
  if (parts.empty() || !device.allocator().host_accessible()) return nullptr;
  const tensor::WeightMatrix& first = parts.front();
  int64_t rows = 0;
  for (const tensor::WeightMatrix& part : parts) {
    if (part.dtype != first.dtype || part.cols != first.cols ||
        part.input_scale != first.input_scale ||
        (part.row_scales == nullptr) != (first.row_scales == nullptr)) {
      return nullptr;
    }
    rows += part.rows;
  }
  std::unique_ptr<LinearWeight> stack(new LinearWeight());
  const int64_t stored_row = row_bytes(first.dtype, first.cols);
  stack->stacked_rows_.resize(static_cast<size_t>(rows * stored_row));
  unsigned char* next_row = stack->stacked_rows_.data();
  for (const tensor::WeightMatrix& part : parts) {
    const size_t bytes = static_cast<size_t>(part.rows * stored_row);
    std::memcpy(next_row, part.data, bytes);
    next_row += bytes;
    if (part.row_scales) {
      stack->owned_scales_.insert(stack->owned_scales_.end(), part.row_scales,
                                  part.row_scales + part.rows);
    }
    if (release) release(part.data, static_cast<uint64_t>(bytes));
  }
  stack->matrix_ = first;
  stack->matrix_.data = stack->stacked_rows_.data();
  stack->matrix_.rows = rows;
  stack->matrix_.row_scales = first.row_scales ? stack->owned_scales_.data() : nullptr;
  // A device that packs the rows into its own layout releases each slice it has packed:
  // once all of them are, the copy is freed (a device reading the stored rows keeps it).
  uint64_t released = 0;
  stack->prepared_ = device.prepare_matrix(
      stack->matrix_, [&released](const void*, uint64_t bytes) { released += bytes; });
  if (released == stack->stacked_rows_.size()) {
    std::vector<unsigned char>().swap(stack->stacked_rows_);
    stack->matrix_.data = nullptr;
  }
  return stack;
}

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
    for (const int32_t id : ids) selected->owned_scales_.push_back(matrix_.row_scales[id]);
    selected->matrix_.row_scales = selected->owned_scales_.data();
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

void copy_columns(const tensor::Tensor& x, int64_t first, int64_t width, float* y,
                  const Device& device) {
  if (x.rank() != 2 || first < 0 || width < 0 || first + width > x.dim(1)) {
    throw std::logic_error("copy_columns: columns [" + std::to_string(first) + ", " +
                           std::to_string(first + width) + ") of " + x.shape_string());
  }
  check_on_device("copy_columns", x, device);
  const int64_t rows = x.dim(0), x_width = x.dim(1);
  const size_t bytes = sizeof(float) * static_cast<size_t>(width);
  for (int64_t r = 0; r < rows; ++r) {
    device.allocator().copy(x.data() + r * x_width + first, bytes, y + r * width);
  }
}

}  // namespace pytransformer::ops
