// Device helpers shared by the CUDA kernels: block reductions and the conversion of stored
// weights to float. Numerics follow csrc/kernels/ref/ exactly: every float product and sum is
// written with __fmul_rn / __fadd_rn so nvcc never contracts them into FMAs (the reference is
// built for baseline x86-64, which has none), and sums that the reference accumulates in a fixed
// order are accumulated here in the same order by one thread.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "format/dtype.h"

namespace pytransformer::kernels::cuda {

constexpr int kWarpSize = 32;

// Combines `value` over the block; every thread gets the result. blockDim.x must be a multiple
// of 32 (<= 1024); scratch: __shared__ T[32]. Warp results are combined in warp order, so the
// result is deterministic for a given block size.
template <typename T, typename Combine>
__device__ T block_reduce(T value, Combine combine, T* scratch) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value = combine(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  const int warps = blockDim.x / kWarpSize;
  __syncthreads();  // a previous reduction may still be reading scratch
  if (threadIdx.x % kWarpSize == 0) scratch[threadIdx.x / kWarpSize] = value;
  __syncthreads();
  value = scratch[0];
  for (int w = 1; w < warps; ++w) value = combine(value, scratch[w]);
  return value;
}

struct MaxOf {
  __device__ float operator()(float a, float b) const { return b > a ? b : a; }
};
struct DoubleSum {
  __device__ double operator()(double a, double b) const { return __dadd_rn(a, b); }
};

// The dot product of kernels/ref (attention.cpp, linear.cpp): element c goes to partial sum
// c % 8 in increasing c, then the 8 partial sums are combined in a fixed tree.
__device__ inline float reduce_lanes(const float* lanes) {
  const float a = __fadd_rn(__fadd_rn(lanes[0], lanes[4]), __fadd_rn(lanes[2], lanes[6]));
  const float b = __fadd_rn(__fadd_rn(lanes[1], lanes[5]), __fadd_rn(lanes[3], lanes[7]));
  return __fadd_rn(a, b);
}

__device__ inline float lane_dot(const float* a, const float* b, int64_t count) {
  float lanes[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const int64_t body = count - count % 8;
  for (int64_t c = 0; c < body; c += 8) {
#pragma unroll
    for (int l = 0; l < 8; ++l) lanes[l] = __fadd_rn(lanes[l], __fmul_rn(a[c + l], b[c + l]));
  }
#pragma unroll
  for (int l = 0; l < 8; ++l) {
    if (body + l < count) lanes[l] = __fadd_rn(lanes[l], __fmul_rn(a[body + l], b[body + l]));
  }
  return reduce_lanes(lanes);
}

// Element `index` (flat, row-major) of a stored weight matrix as float, exactly as
// kernels/ref/convert.h converts it. row_scales: per-row scales of int8 matrices.
template <DType D>
__device__ inline float load_weight(const void* matrix, const float* row_scales, int64_t row,
                                    int64_t index) {
  if constexpr (D == DType::F32) {
    return static_cast<const float*>(matrix)[index];
  } else if constexpr (D == DType::F16) {
    return __half2float(static_cast<const __half*>(matrix)[index]);
  } else if constexpr (D == DType::BF16) {
    const uint16_t bits = static_cast<const uint16_t*>(matrix)[index];
    return __uint_as_float(static_cast<uint32_t>(bits) << 16);
  } else {
    return __fmul_rn(static_cast<float>(static_cast<const int8_t*>(matrix)[index]), row_scales[row]);
  }
}

// Element (row, col) of a q8_0 / q4_1 matrix of `cols` columns, exactly as
// kernels/ref/convert.h dequantises it (q4_1: d * n, then + m).
template <DType D>
__device__ inline float load_block_weight(const void* matrix, int64_t row, int64_t col,
                                          int64_t cols) {
  constexpr int64_t kBlock = D == DType::Q8_0 ? 34 : 20;
  const auto* block = static_cast<const unsigned char*>(matrix) +
                      (row * (cols / kBlockValues) + col / kBlockValues) * kBlock;
  const int64_t i = col % kBlockValues;
  const float d = __half2float(__ushort_as_half(static_cast<unsigned short>(block[0] | (block[1] << 8))));
  if constexpr (D == DType::Q8_0) {
    return __fmul_rn(d, static_cast<float>(reinterpret_cast<const int8_t*>(block + 2)[i]));
  } else {
    const float m = __half2float(__ushort_as_half(static_cast<unsigned short>(block[2] | (block[3] << 8))));
    const unsigned char pair = block[4 + i % (kBlockValues / 2)];
    const int n = i < kBlockValues / 2 ? (pair & 15) : (pair >> 4);
    return __fadd_rn(__fmul_rn(d, static_cast<float>(n)), m);
  }
}

// Threads per block for a per-row kernel over `width` elements: a multiple of 32 in [32, limit].
inline int row_block_size(int64_t width, int limit = 256) {
  int threads = kWarpSize;
  while (threads < limit && threads < width) threads *= 2;
  return threads;
}

}  // namespace pytransformer::kernels::cuda
