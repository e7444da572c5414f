#include "tensor/weight_matrix.h"

#include "format/tensor_names.h"
#include "pytransformer/error.h"

namespace pytransformer::tensor {
namespace {

[[noreturn]] void fail(const format::ModelFile& file, const std::string& message) {
  throw FormatError(file.path() + ": " + message);
}

}  // namespace

WeightMatrix WeightMatrix::from_file(const format::ModelFile& file, const std::string& name) {
  const format::TensorView& view = file.tensor(name);
  if (view.shape.size() != 2) fail(file, "tensor '" + name + "' is not a matrix");
  WeightMatrix matrix;
  matrix.data = view.data;
  matrix.dtype = view.dtype;
  matrix.rows = view.shape[0];
  matrix.cols = view.shape[1];
  if (view.dtype == DType::INT8) {
    matrix.row_scales = vector_from_file(file, format::scale_name(name), matrix.rows);
    const std::string input_scale = format::input_scale_name(name);
    if (file.has_tensor(input_scale)) matrix.input_scale = *vector_from_file(file, input_scale, 1);
  }
  return matrix;
}

const float* vector_from_file(const format::ModelFile& file, const std::string& name, int64_t size) {
  const format::TensorView& view = file.tensor(name);
  if (view.dtype != DType::F32 || view.shape.size() != 1 || view.shape[0] != size) {
    fail(file, "tensor '" + name + "' must be an f32 vector of " + std::to_string(size) +
                   " elements");
  }
  return static_cast<const float*>(view.data);
}

}  // namespace pytransformer::tensor
