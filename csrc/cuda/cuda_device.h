// An NVIDIA GPU as an ops::Device: device memory (cudaMalloc) and the kernels of
// csrc/kernels/cuda/, which follow the numerics of the reference kernels, so models::Seq2SeqModel
// and the layers run on it unchanged (and the search strategies of csrc/decoding/ on top, the
// logits coming back to the host every step). Compiled only into the optional _cuda module; the
// CPU package never links it.
//
// Device memory:
// - weights are uploaded once, in their stored dtype (f16 and bf16 values are converted while
//   the GEMM reads them; int8 weights multiply int8-quantised activations, as the CPU core does),
//   each distinct host range once (tied weights are shared);
// - activations and the decoder caches are Tensors of allocator(); the self-attention cache
//   grows in blocks of kCacheBlockSteps steps (cache_block_steps), since device memory is
//   committed when allocated;
// - small host arrays the ops pass (ids, positions, lengths, ancestry, chunk bases) are uploaded
//   into staging buffers kept here, on the device's one stream.
//
// Thread-safety: one stream, one mutex: a model holds begin_call() for each of its calls, which
// serialises the GPU work of all the models on this device object and makes the GPU current;
// every entry below runs under it.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "ops/device.h"

namespace pytransformer::cuda {

// Raised when the GPU cannot be used at all (no driver, no device, unsupported device); the
// message starts with "CUDA requested but".
class CudaUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How linear layers with f32, f16 or bf16 weights multiply: EXACT uses our kernel,
// bit-identical to the reference GEMM; CUBLAS uses cublasSgemm in full f32
// (kernels/cuda/linear.h), available when the build found cuBLAS (cublas_available()). int8
// weights always use the int8 kernel.
enum class GemmBackend { EXACT, CUBLAS };
bool cublas_available();

class CudaDevice final : public ops::Device {
 public:
  static constexpr int64_t kCacheBlockSteps = 16;

  // Throws CudaUnavailable when GPU `device` cannot be used, InvalidArgument for a GEMM backend
  // this build lacks.
  explicit CudaDevice(int device = 0, GemmBackend gemm = GemmBackend::EXACT);
  ~CudaDevice() override;

  int index() const;
  GemmBackend gemm() const;

  const tensor::Allocator& allocator() const override;
  std::string name() const override;
  std::string description() const override;
  std::unique_ptr<Call> begin_call() const override;

  std::unique_ptr<ops::DeviceMatrix> prepare_matrix(const tensor::WeightMatrix& matrix,
                                                    const ops::ReleaseSlice& release) const override;
  const void* weight(const void* host, size_t bytes) const override;

  int64_t max_attention_keys(int64_t head_dim) const override;
  int64_t cache_block_steps(int64_t) const override { return kCacheBlockSteps; }

  void linear(const float* x, int64_t m, const tensor::WeightMatrix& matrix,
              const ops::DeviceMatrix& prepared, const ops::LinearOutput& output,
              float* y) const override;
  void layer_norm(const float* x, const float* residual, const float* gamma, const float* beta,
                  int64_t rows, int64_t dim, double epsilon, float* y) const override;
  void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, double epsilon,
                float* y) const override;
  void gated_activation(format::Activation kind, const float* x, int64_t rows, int64_t width,
                        float* y) const override;
  void ssru_step(const float* gates, const float* previous, const int32_t* parent, int64_t n,
                 int64_t d, bool accumulate, float* cells, float* out) const override;
  void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t rotary_dim,
                    const int32_t* positions, const float* cos, const float* sin,
                    kernels::ref::RotaryLayout layout) const override;
  void attention(const float* q, const float* k, const float* v, int64_t batch, int64_t q_len,
                 int64_t kv_len, int64_t heads, int64_t kv_heads, int64_t head_dim,
                 const int32_t* kv_index, int64_t kv_batch, const int64_t* kv_lengths,
                 bool causal, float scale, float* out, float* probabilities) const override;
  void cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                        int64_t head_dim, int64_t steps, const float* const* step_keys,
                        const float* const* step_values, const int32_t* ancestry,
                        int64_t ancestry_stride, float scale, float* out) const override;
  void embedding(const int32_t* ids, const int64_t* positions, int64_t count, const void* table,
                 DType dtype, const float* row_scales, int64_t dim, float scale,
                 const float* position_table, float* out) const override;
  void zero(float* y, int64_t count) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pytransformer::cuda
