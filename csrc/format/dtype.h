// Element types of tensors stored in a model file (codes are the on-disk values, see
// docs/format.md). The lowest layer: everything above may include this header.
//
// Q8_0 and Q4_1 are ggml's block formats: a matrix row is cols / kBlockValues blocks of
// block_bytes(dtype) bytes each (docs/format.md, "Block-quantised matrices"); the other dtypes
// store one element in dtype_size(dtype) bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pytransformer {

enum class DType : uint8_t {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  INT8 = 3,
  Q8_0 = 4,
  Q4_1 = 5,
};

constexpr DType kLastDType = DType::Q4_1;

// Values per block of the block dtypes.
constexpr int64_t kBlockValues = 32;

constexpr bool is_block_dtype(DType dtype) { return dtype == DType::Q8_0 || dtype == DType::Q4_1; }

// Bytes of one block of a block dtype (0 for the others).
constexpr size_t block_bytes(DType dtype) {
  switch (dtype) {
    case DType::Q8_0: return 2 + 32;         // f16 d, int8 q[32]
    case DType::Q4_1: return 2 + 2 + 16;     // f16 d, f16 m, 32 nibbles
    default: return 0;
  }
}

// Bytes of one element (0 for block dtypes: use row_bytes).
inline size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::INT8: return 1;
    case DType::Q8_0:
    case DType::Q4_1: return 0;
  }
  return 0;
}

// Bytes of a row of `cols` elements; for block dtypes cols must be a multiple of kBlockValues.
inline int64_t row_bytes(DType dtype, int64_t cols) {
  if (is_block_dtype(dtype)) return cols / kBlockValues * static_cast<int64_t>(block_bytes(dtype));
  return cols * static_cast<int64_t>(dtype_size(dtype));
}

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::INT8: return "int8";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_1: return "q4_1";
  }
  return "unknown";
}

}  // namespace pytransformer
