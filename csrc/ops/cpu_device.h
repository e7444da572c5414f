// The CPU as an ops::Device: host memory, the kernel variant selected at run time
// (kernels/cpu/kernels.h) and a thread pool that splits GEMM output columns (whole panels) and
// attention batch entries. Results do not depend on the thread count. Weight matrices are
// packed once into the selected variant's layout (the scalar variant reads them in place), and
// every other weight is read where the model file holds it.
#pragma once

#include <memory>
#include <string>

#include "ops/device.h"
#include "tensor/thread_pool.h"

namespace pytransformer::ops {

class CpuDevice final : public Device {
 public:
  // threads: 0 = the physical cores (kernels::cpu::cpu_features()). Selects the CPU kernels
  // first, so an unusable PYTRANSFORMER_ISA throws InvalidArgument here.
  explicit CpuDevice(int threads = 0);

  int threads() const { return pool_.size(); }

  const tensor::Allocator& allocator() const override;
  std::string name() const override { return "cpu"; }
  std::string description() const override;
  std::unique_ptr<Call> begin_call() const override { return nullptr; }

  std::unique_ptr<DeviceMatrix> select_rows(const tensor::WeightMatrix& matrix,
                                            const DeviceMatrix& prepared, const int32_t* ids,
                                            int64_t count) const override;
  std::unique_ptr<DeviceMatrix> prepare_matrix(const tensor::WeightMatrix& matrix,
                                               const ReleaseSlice& release) const override;
  const void* weight(const void* host, size_t) const override { return host; }

  int64_t max_attention_keys(int64_t head_dim) const override;
  int64_t cache_block_steps(int64_t max_steps) const override { return max_steps; }

  void linear(const float* x, int64_t m, const tensor::WeightMatrix& matrix,
              const DeviceMatrix& prepared, const LinearOutput& output, float* y) const override;
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
  tensor::ThreadPool pool_;
};

}  // namespace pytransformer::ops
