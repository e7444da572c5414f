// Where a model's tensors live and how its ops run: the CPU (ops/cpu_device.h: the selected
// CPU kernels over a thread pool) or a CUDA GPU (csrc/cuda/cuda_device.h, compiled only into the
// optional _cuda module, which makes one for each model it loads on a GPU). The ops (ops/*.h) check
// shapes and arguments and then call their entry here, so the layers (csrc/layers/) and
// Seq2SeqModel are written once for every device; a device only supplies kernels and memory.
//
// Pointers to floats are in the device's memory (allocator()) unless an entry says "host":
// small index arrays (ids, positions, lengths, ancestry, the cache's chunk bases) always come
// from the host, and a GPU uploads them itself. Weights are given to prepare_matrix() and
// weight() as views of the model file's host memory.
//
// Thread-safety: every entry may be called from any thread, under the rules of begin_call().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "format/dtype.h"
#include "format/model_config.h"
#include "kernels/ref/rotary.h"
#include "tensor/allocator.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::ops {

// A weight matrix in the layout a device's linear kernels read (packed panels on the CPU, an
// upload on a GPU), made once by Device::prepare_matrix.
class DeviceMatrix {
 public:
  virtual ~DeviceMatrix() = default;
};

// Called with slices of a matrix's stored bytes (a few MB each) as soon as the device holds
// them in its own layout, so the caller can release their pages before the next slice is read.
using ReleaseSlice = std::function<void(const void* data, uint64_t bytes)>;

// The output pass of linear(): y = v + bias, then activation(...) when activation is set, or
// + residual[i, j] when residual is set (never both; residual may be y itself, each element is
// read before written).
struct LinearOutput {
  const float* bias = nullptr;                     // [n] or nullptr
  const format::Activation* activation = nullptr;  // or nullptr
  const float* residual = nullptr;                 // [m, n] or nullptr
};

class Device {
 public:
  virtual ~Device() = default;

  virtual const tensor::Allocator& allocator() const = 0;
  virtual std::string name() const = 0;         // "cpu", "cuda:0"
  virtual std::string description() const = 0;  // "avx512_vnni kernels, 2 threads", ...

  // Serialises the calls of one model on devices that need it and makes the device current for
  // the calling thread: a model holds the returned object for the whole of each call (load,
  // encode, start_decoding, decode_step). nullptr where calls may run concurrently (the CPU).
  class Call {
   public:
    virtual ~Call() = default;
  };
  virtual std::unique_ptr<Call> begin_call() const = 0;

  // -- weights, while a model is built ----------------------------------------------------------
  // `matrix` [rows, cols] in its stored dtype, as linear() reads it; release: ReleaseSlice
  // (never called by a device that reads the stored bytes in place).
  virtual std::unique_ptr<DeviceMatrix> prepare_matrix(const tensor::WeightMatrix& matrix,
                                                       const ReleaseSlice& release) const = 0;
  // The rows ids[0..count) (each < matrix.rows, host) of a matrix prepared by prepare_matrix,
  // in that order, as a prepared matrix of `count` rows that linear() reads with a view of
  // count rows (a vocabulary shortlist's output layer, made per batch); nullptr where the
  // device does not select rows (the default; the caller then uses the whole matrix).
  virtual std::unique_ptr<DeviceMatrix> select_rows(const tensor::WeightMatrix& matrix,
                                                    const DeviceMatrix& prepared,
                                                    const int32_t* ids, int64_t count) const {
    (void)matrix, (void)prepared, (void)ids, (void)count;
    return nullptr;
  }
  // A weight the other kernels read in place (embedding tables, their int8 scales, biases,
  // LayerNorm parameters), `bytes` of host memory: the same pointer on the CPU, a copy (made once
  // per distinct host range, so tied weights are shared) on a GPU. Valid while the device is.
  virtual const void* weight(const void* host, size_t bytes) const = 0;

  // -- limits and policies ------------------------------------------------------------------------
  // Keys one attention call may attend over (a GPU stages a row of scores in shared memory).
  virtual int64_t max_attention_keys(int64_t head_dim) const = 0;
  // Steps per block of a decoder self-attention cache of max_steps steps: the CPU takes all of
  // them in one uninitialised block (it costs address space, not memory, until rows are
  // written); a GPU commits memory when it allocates, so it allocates blocks as steps need them.
  virtual int64_t cache_block_steps(int64_t max_steps) const = 0;

  // -- kernels (contracts: the references in kernels/ref/) ----------------------------------------
  // y[i, j] = output(sum_c x[i, c] W[j, c]) for i < m, j < n: x [m, k], y [m, n], not aliasing x.
  // matrix: the stored view (dtype, rows = n, cols = k) that `prepared` was made from.
  virtual void linear(const float* x, int64_t m, const tensor::WeightMatrix& matrix,
                      const DeviceMatrix& prepared, const LinearOutput& output, float* y) const = 0;
  // kernels/ref/layer_norm.h: y = LN(x + residual) (residual optional); y may alias x or residual.
  virtual void layer_norm(const float* x, const float* residual, const float* gamma,
                          const float* beta, int64_t rows, int64_t dim, double epsilon,
                          float* y) const = 0;
  // kernels/ref/rms_norm.h: y = RMSNorm(x) * gamma; y may alias x.
  virtual void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim,
                        double epsilon, float* y) const = 0;
  // kernels/ref/activation.h's gated_activation: x [rows, 2 * width] (gate | linear) into y
  // [rows, width], not aliasing x.
  virtual void gated_activation(format::Activation kind, const float* x, int64_t rows,
                                int64_t width, float* y) const = 0;
  // kernels/ref/ssru.h's ssru_step: gates [n, 2d], previous [*, d] or nullptr (the first
  // step), parent [n] host, cells and out [n, d] (out += the result when accumulate); all but
  // parent device memory.
  virtual void ssru_step(const float* gates, const float* previous, const int32_t* parent,
                         int64_t n, int64_t d, bool accumulate, float* cells, float* out) const = 0;
  // kernels/ref/rotary.h's apply_rotary, in place on x [rows, heads * head_dim]. positions
  // [rows]: host, each below the tables' positions. cos, sin: device memory (weight()).
  virtual void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim,
                            int64_t rotary_dim, const int32_t* positions, const float* cos,
                            const float* sin, kernels::ref::RotaryLayout layout) const = 0;
  // kernels/ref/attention.h (full sequences with key padding, grouped-query heads and an
  // optional causal mask). kv_index [batch] (or nullptr) and kv_lengths [kv_batch]: host.
  // probabilities: optional [batch, heads, q_len, kv_len].
  virtual void attention(const float* q, const float* k, const float* v, int64_t batch,
                         int64_t q_len, int64_t kv_len, int64_t heads, int64_t kv_heads,
                         int64_t head_dim, const int32_t* kv_index, int64_t kv_batch,
                         const int64_t* kv_lengths, bool causal, float scale, float* out,
                         float* probabilities) const = 0;
  // kernels/ref/attention.h (one decoder step over the step-chunked cache, rows of
  // kv_heads * head_dim). step_keys, step_values [steps] (host arrays of pointers into device
  // memory) and ancestry [n, ancestry_stride]: host.
  virtual void cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                                int64_t head_dim, int64_t steps, const float* const* step_keys,
                                const float* const* step_values, const int32_t* ancestry,
                                int64_t ancestry_stride, float scale, float* out) const = 0;
  // kernels/ref/embedding.h. ids, positions [count]: host, in range. table, row_scales and
  // position_table: device memory (weight() and a tensor of allocator()).
  virtual void embedding(const int32_t* ids, const int64_t* positions, int64_t count,
                         const void* table, DType dtype, const float* row_scales, int64_t dim,
                         float scale, const float* position_table, float* out) const = 0;
  // y[i] = 0 for i < count.
  virtual void zero(float* y, int64_t count) const = 0;
};

}  // namespace pytransformer::ops
