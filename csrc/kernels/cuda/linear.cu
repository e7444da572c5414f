#include "kernels/cuda/linear.h"

#include <cfloat>

#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pytransformer::kernels::cuda {
namespace {

// A block computes a kTile x kTile tile of y, one output per thread, streaming x rows and W rows
// through shared memory kDepth columns at a time. kDepth is a multiple of 8, so column c of the
// tile at offset c0 always feeds partial sum c % 8, as in the reference. (f32, f16, bf16 weights)
constexpr int kTile = 16;
constexpr int kDepth = 32;

struct Epilogue {
  const float* bias;
  bool has_activation;
  format::Activation activation;
};

__device__ inline float finish(float dot, int64_t j, const Epilogue& epilogue) {
  const float value = __fadd_rn(dot, epilogue.bias ? epilogue.bias[j] : 0.0f);
  return epilogue.has_activation ? apply_activation(epilogue.activation, value) : value;
}

template <DType D>
__global__ void linear_kernel(const float* x, int64_t m, int64_t k, const void* weight, int64_t n,
                              Epilogue epilogue, float* y) {
  __shared__ float x_tile[kTile][kDepth + 1];
  __shared__ float w_tile[kTile][kDepth + 1];
  const int column = threadIdx.x % kTile;  // j - first_column
  const int row = threadIdx.x / kTile;     // i - first_row
  const int64_t first_row = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t first_column = static_cast<int64_t>(blockIdx.x) * kTile;
  float lanes[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t c0 = 0; c0 < k; c0 += kDepth) {
    // Out-of-range entries are zero: they add +0 to a partial sum, which changes nothing.
    for (int e = threadIdx.x; e < kTile * kDepth; e += blockDim.x) {
      const int r = e / kDepth, c = e % kDepth;
      const int64_t source_column = c0 + c;
      const int64_t i = first_row + r, j = first_column + r;
      x_tile[r][c] = (i < m && source_column < k) ? x[i * k + source_column] : 0.0f;
      w_tile[r][c] = (j < n && source_column < k)
                         ? load_weight<D>(weight, nullptr, j, j * k + source_column)
                         : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int c = 0; c < kDepth; c += 8) {
#pragma unroll
      for (int l = 0; l < 8; ++l) {
        lanes[l] = __fadd_rn(lanes[l], __fmul_rn(x_tile[row][c + l], w_tile[column][c + l]));
      }
    }
    __syncthreads();
  }
  const int64_t i = first_row + row, j = first_column + column;
  if (i < m && j < n) y[i * n + j] = finish(reduce_lanes(lanes), j, epilogue);
}

template <DType D>
__global__ void convert_kernel(const void* weight, int64_t count, float* dst) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index < count) dst[index] = load_weight<D>(weight, nullptr, 0, index);
}

// One block per row: amax over the row (exact in any order), then each value scaled by
// 127 / amax, rounded half to even and clamped, exactly as kernels::ref::quantize_rows.
__global__ void quantize_rows_kernel(const float* x, int64_t k, float step, int8_t* quantized,
                                     float* scales) {
  __shared__ float scratch[kWarpSize];
  const int64_t i = blockIdx.x;
  const float* xi = x + i * k;
  int8_t* qi = quantized + i * k;
  if (step > 0.0f) {  // kernels/ref/linear_int8.h's quantize_rows_fixed
    if (threadIdx.x == 0) scales[i] = step;
    for (int64_t c = threadIdx.x; c < k; c += blockDim.x) {
      float v = rintf(__fdiv_rn(xi[c], step));
      v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
      qi[c] = v == v ? static_cast<int8_t>(v) : 0;
    }
    return;
  }
  float local = 0.0f;
  for (int64_t c = threadIdx.x; c < k; c += blockDim.x) local = MaxOf()(local, fabsf(xi[c]));
  const float amax = block_reduce(local, MaxOf(), scratch);
  if (!(amax >= FLT_MIN)) {  // zero or subnormal: the row quantises to zeros with scale 1
    for (int64_t c = threadIdx.x; c < k; c += blockDim.x) qi[c] = 0;
    if (threadIdx.x == 0) scales[i] = 1.0f;
    return;
  }
  if (threadIdx.x == 0) scales[i] = __fdiv_rn(amax, 127.0f);
  const float inverse = __fdiv_rn(127.0f, amax);
  for (int64_t c = threadIdx.x; c < k; c += blockDim.x) {
    float v = rintf(__fmul_rn(xi[c], inverse));
    v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
    qi[c] = static_cast<int8_t>(v);
  }
}

// The tiling of linear_kernel over int8 values; int32 sums are exact in any order.
__global__ void linear_int8_kernel(const int8_t* quantized, const float* scales, int64_t m,
                                   int64_t k, const int8_t* weight, const float* weight_scales,
                                   int64_t n, Epilogue epilogue, float* y) {
  __shared__ int32_t x_tile[kTile][kDepth + 1];
  __shared__ int32_t w_tile[kTile][kDepth + 1];
  const int column = threadIdx.x % kTile;
  const int row = threadIdx.x / kTile;
  const int64_t first_row = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t first_column = static_cast<int64_t>(blockIdx.x) * kTile;
  int32_t sum = 0;
  for (int64_t c0 = 0; c0 < k; c0 += kDepth) {
    for (int e = threadIdx.x; e < kTile * kDepth; e += blockDim.x) {
      const int r = e / kDepth, c = e % kDepth;
      const int64_t source_column = c0 + c;
      const int64_t i = first_row + r, j = first_column + r;
      x_tile[r][c] = (i < m && source_column < k) ? quantized[i * k + source_column] : 0;
      w_tile[r][c] = (j < n && source_column < k) ? weight[j * k + source_column] : 0;
    }
    __syncthreads();
#pragma unroll
    for (int c = 0; c < kDepth; ++c) sum += x_tile[row][c] * w_tile[column][c];
    __syncthreads();
  }
  const int64_t i = first_row + row, j = first_column + column;
  if (i >= m || j >= n) return;
  const float product = __fmul_rn(static_cast<float>(sum), __fmul_rn(scales[i], weight_scales[j]));
  const float value = epilogue.bias ? __fadd_rn(product, epilogue.bias[j]) : product;
  y[i * n + j] = epilogue.has_activation ? apply_activation(epilogue.activation, value) : value;
}

__global__ void bias_activation_kernel(float* y, int64_t m, int64_t n, Epilogue epilogue) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index < m * n) y[index] = finish(y[index], index % n, epilogue);
}

Epilogue make_epilogue(const float* bias, const format::Activation* activation) {
  return Epilogue{bias, activation != nullptr,
                  activation ? *activation : format::Activation::RELU};
}

constexpr int kElementThreads = 256;

}  // namespace

void linear(const float* x, int64_t m, const DeviceWeight& weight, const float* bias,
            const format::Activation* activation, float* y, cudaStream_t stream) {
  const int64_t n = weight.rows, k = weight.cols;
  if (m <= 0 || n <= 0) return;
  if ((m + kTile - 1) / kTile > 65535) throw CudaError("linear: too many rows for one launch");
  const dim3 grid(static_cast<unsigned>((n + kTile - 1) / kTile),
                  static_cast<unsigned>((m + kTile - 1) / kTile));
  const Epilogue epilogue = make_epilogue(bias, activation);
  switch (weight.dtype) {
    case DType::F32:
      linear_kernel<DType::F32><<<grid, kTile * kTile, 0, stream>>>(x, m, k, weight.data, n, epilogue, y);
      break;
    case DType::F16:
      linear_kernel<DType::F16><<<grid, kTile * kTile, 0, stream>>>(x, m, k, weight.data, n, epilogue, y);
      break;
    case DType::BF16:
      linear_kernel<DType::BF16><<<grid, kTile * kTile, 0, stream>>>(x, m, k, weight.data, n, epilogue, y);
      break;
    case DType::INT8:
      throw CudaError("linear: int8 weights go through linear_int8");
    case DType::Q8_0:
    case DType::Q4_1:
      throw CudaError("linear: block weights are expanded to f32 when prepared");
  }
  check_launch("linear_kernel");
}

void linear_int8(const float* x, int64_t m, const DeviceWeight& weight, const float* bias,
                 const format::Activation* activation, int8_t* quantized, float* row_scales,
                 float* y, cudaStream_t stream) {
  const int64_t n = weight.rows, k = weight.cols;
  if (weight.dtype != DType::INT8) throw CudaError("linear_int8: the weights are not int8");
  if (m <= 0 || n <= 0) return;
  if ((m + kTile - 1) / kTile > 65535) throw CudaError("linear_int8: too many rows for one launch");
  if (k >= (int64_t{1} << 17)) throw CudaError("linear_int8: int32 sums need k < 131072");
  quantize_rows_kernel<<<m, row_block_size(k), 0, stream>>>(x, k, weight.input_scale, quantized,
                                                             row_scales);
  check_launch("quantize_rows_kernel");
  const dim3 grid(static_cast<unsigned>((n + kTile - 1) / kTile),
                  static_cast<unsigned>((m + kTile - 1) / kTile));
  linear_int8_kernel<<<grid, kTile * kTile, 0, stream>>>(
      quantized, row_scales, m, k, static_cast<const int8_t*>(weight.data), weight.row_scales, n,
      make_epilogue(bias, activation), y);
  check_launch("linear_int8_kernel");
}

void convert_weight(const DeviceWeight& weight, float* dst, cudaStream_t stream) {
  const int64_t count = weight.rows * weight.cols;
  if (count <= 0) return;
  const int64_t blocks = (count + kElementThreads - 1) / kElementThreads;
  switch (weight.dtype) {
    case DType::F32:
      convert_kernel<DType::F32><<<blocks, kElementThreads, 0, stream>>>(weight.data, count, dst);
      break;
    case DType::F16:
      convert_kernel<DType::F16><<<blocks, kElementThreads, 0, stream>>>(weight.data, count, dst);
      break;
    case DType::BF16:
      convert_kernel<DType::BF16><<<blocks, kElementThreads, 0, stream>>>(weight.data, count, dst);
      break;
    case DType::INT8:
      throw CudaError("convert_weight: int8 weights go through linear_int8");
    case DType::Q8_0:
    case DType::Q4_1:
      throw CudaError("convert_weight: block weights are expanded to f32 when prepared");
  }
  check_launch("convert_kernel");
}

void bias_activation(float* y, int64_t m, int64_t n, const float* bias,
                     const format::Activation* activation, cudaStream_t stream) {
  const int64_t count = m * n;
  if (count <= 0 || (!bias && !activation)) return;
  bias_activation_kernel<<<(count + kElementThreads - 1) / kElementThreads, kElementThreads, 0,
                           stream>>>(y, m, n, make_epilogue(bias, activation));
  check_launch("bias_activation_kernel");
}

}  // namespace pytransformer::kernels::cuda
