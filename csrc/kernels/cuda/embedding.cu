#include "kernels/cuda/embedding.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pytransformer::kernels::cuda {
namespace {

template <DType D>
__global__ void embedding_kernel(const int32_t* ids, const int64_t* positions, const void* table,
                                 const float* row_scales, int64_t dim, float scale,
                                 const float* position_table, float* out) {
  const int64_t i = blockIdx.x;
  const int64_t id = ids[i];
  const float* position = position_table + positions[i] * dim;
  float* row = out + i * dim;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    float value;
    if constexpr (D == DType::Q8_0 || D == DType::Q4_1) {
      value = load_block_weight<D>(table, id, c, dim);
    } else {
      value = load_weight<D>(table, row_scales, id, id * dim + c);
    }
    row[c] = __fadd_rn(__fmul_rn(value, scale), position[c]);
  }
}

}  // namespace

void embedding(const int32_t* ids, const int64_t* positions, int64_t count, const void* table,
               DType dtype, const float* row_scales, int64_t dim, float scale,
               const float* position_table, float* out, cudaStream_t stream) {
  if (count <= 0) return;
  const int threads = row_block_size(dim);
  switch (dtype) {
    case DType::F32:
      embedding_kernel<DType::F32><<<count, threads, 0, stream>>>(ids, positions, table, nullptr, dim, scale, position_table, out);
      break;
    case DType::F16:
      embedding_kernel<DType::F16><<<count, threads, 0, stream>>>(ids, positions, table, nullptr, dim, scale, position_table, out);
      break;
    case DType::BF16:
      embedding_kernel<DType::BF16><<<count, threads, 0, stream>>>(ids, positions, table, nullptr, dim, scale, position_table, out);
      break;
    case DType::INT8:
      embedding_kernel<DType::INT8><<<count, threads, 0, stream>>>(ids, positions, table, row_scales, dim, scale, position_table, out);
      break;
    case DType::Q8_0:
      embedding_kernel<DType::Q8_0><<<count, threads, 0, stream>>>(ids, positions, table, nullptr, dim, scale, position_table, out);
      break;
    case DType::Q4_1:
      embedding_kernel<DType::Q4_1><<<count, threads, 0, stream>>>(ids, positions, table, nullptr, dim, scale, position_table, out);
      break;
  }
  check_launch("embedding_kernel");
}

}  // namespace pytransformer::kernels::cuda
