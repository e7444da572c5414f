// Element types of tensors stored in a model file (codes are the on-disk values, see
// docs/format.md). The lowest layer: everything above may include this header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pytransformer {

enum class DType : uint8_t {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  INT8 = 3,
};

inline size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::INT8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::INT8: return "int8";
  }
  return "unknown";
}

}  // namespace pytransformer
