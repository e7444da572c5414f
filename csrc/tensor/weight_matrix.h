// A read-only view of a weight matrix [rows, cols] inside the model file's copy (read at load,
// never mapped), in any stored dtype (f32, f16, bf16, int8 with per-row scales). Does not own
// the memory: valid as long as the format::ModelFile it came from.
#pragma once

#include <cstdint>
#include <string>

#include "format/dtype.h"
#include "format/model_file.h"

namespace pytransformer::tensor {

struct WeightMatrix {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const float* row_scales = nullptr;  // [rows], int8 only
  // int8 only: the fixed quantisation step of the inputs (`.input_scale`), 0 when each input
  // row is quantised by its own max (kernels/ref/linear_int8.h).
  float input_scale = 0.0f;

  // The rank-2 tensor `name` of `file` (and its ".scale", and ".input_scale" if present, when
  // int8). Throws FormatError when
  // absent or not a matrix.
  static WeightMatrix from_file(const format::ModelFile& file, const std::string& name);
};

// The f32 vector `name` of `file` with `size` elements; throws FormatError otherwise.
const float* vector_from_file(const format::ModelFile& file, const std::string& name, int64_t size);

}  // namespace pytransformer::tensor
