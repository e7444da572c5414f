// Softmax of a row held in shared memory by the whole block, as kernels/ref/softmax.cpp computes
// it: max in f32 (exact in any order), exp(x - max) rounded to f32, the sum in double, then
// x * f32(1 / sum). exp is evaluated in double and rounded (the correctly rounded value).
// Every thread of the block must call it; row: shared memory [count], count >= 1. Each thread
// touches the entries threadIdx.x + k * blockDim.x; all entries are final when it returns.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/device_common.cuh"

namespace pytransformer::kernels::cuda {

__device__ inline void block_softmax(float* row, int64_t count, float* float_scratch,
                                     double* double_scratch) {
  __syncthreads();  // the caller's threads have written the row
  float local_max = row[0];
  for (int64_t c = threadIdx.x; c < count; c += blockDim.x) local_max = MaxOf()(local_max, row[c]);
  const float max_value = block_reduce(local_max, MaxOf(), float_scratch);
  double partial = 0.0;
  for (int64_t c = threadIdx.x; c < count; c += blockDim.x) {
    const float e = static_cast<float>(exp(static_cast<double>(__fsub_rn(row[c], max_value))));
    row[c] = e;
    partial = __dadd_rn(partial, static_cast<double>(e));
  }
  const double total = block_reduce(partial, DoubleSum(), double_scratch);
  const float inverse = static_cast<float>(1.0 / total);
  for (int64_t c = threadIdx.x; c < count; c += blockDim.x) row[c] = __fmul_rn(row[c], inverse);
  __syncthreads();
}

}  // namespace pytransformer::kernels::cuda
