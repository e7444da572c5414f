#include "ops/cpu_device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include <sys/mman.h>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/kernels.h"
#include "kernels/ref/embedding.h"
#include "kernels/ref/linear_int8.h"

namespace pytransformer::ops {
namespace {

// Selects the kernel table (throws on a bad PYTRANSFORMER_ISA) and resolves threads = 0.
int checked_threads(int threads) {
  kernels::cpu::kernels();
  return threads > 0 ? threads : std::max(1, kernels::cpu::cpu_features().physical_cores);
}

// A matrix packed for the selected kernels into 64-byte aligned memory owned here, or the stored
// matrix itself for variants that read it in place (scalar).
class CpuMatrix final : public DeviceMatrix {
 public:
  CpuMatrix(const tensor::WeightMatrix& matrix, const ReleaseSlice& release) : stored_(matrix.data) {
    const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
    const int64_t bytes = kernels.packed_weight_bytes(matrix.dtype, matrix.rows, matrix.cols);
    if (bytes == 0) return;
    allocate(bytes);
    // Slices of whole panels of about kSliceBytes of the stored matrix each.
    constexpr int64_t kSliceBytes = int64_t{1} << 22;
    const int64_t stored_row = row_bytes(matrix.dtype, matrix.cols);
    const int64_t panel = kernels.panel_columns;
    const int64_t slice_rows = std::max<int64_t>(1, kSliceBytes / (stored_row * panel)) * panel;
    const auto* stored = static_cast<const unsigned char*>(matrix.data);
    auto* out = static_cast<unsigned char*>(packed_.get());
    for (int64_t first = 0; first < matrix.rows; first += slice_rows) {
      const int64_t rows = std::min(slice_rows, matrix.rows - first);
      kernels.pack_weight(stored + first * stored_row, matrix.dtype, rows, matrix.cols,
                          out + kernels.packed_weight_bytes(matrix.dtype, first, matrix.cols));
      if (release) release(stored + first * stored_row, static_cast<uint64_t>(rows * stored_row));
    }
  }

  // Rows ids[0..count) of `whole` (prepared from `matrix`): selected from its packed panels,
  // or, for variants that read the stored layout, copied from the stored rows.
  CpuMatrix(const CpuMatrix& whole, const tensor::WeightMatrix& matrix, const int32_t* ids,
            int64_t count) : stored_(nullptr) {
    const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
    if (!whole.packed_) {
      const int64_t stored_row = row_bytes(matrix.dtype, matrix.cols);
      const auto* stored = static_cast<const unsigned char*>(whole.stored_);
      owned_rows_.resize(static_cast<size_t>(count * stored_row));
      for (int64_t c = 0; c < count; ++c) {
        std::memcpy(owned_rows_.data() + c * stored_row, stored + ids[c] * stored_row,
                    static_cast<size_t>(stored_row));
      }
      stored_ = owned_rows_.data();
      return;
    }
    allocate(kernels.packed_weight_bytes(matrix.dtype, count, matrix.cols));
    kernels.select_packed_rows(whole.packed_.get(), matrix.dtype, matrix.rows, matrix.cols, ids,
                               count, packed_.get());
  }

  // What the kernels read: the packed copy, or the stored matrix.
  const void* kernel_data() const { return packed_ ? packed_.get() : stored_; }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  void allocate(int64_t bytes) {
    // Matrices of a huge page or more (an output layer) start on one and may use transparent
    // huge pages: faulting in 4 KB pages is much of the time of a cold load (the default
    // model's 16 MB output layer). Advice only.
    constexpr size_t kHugePage = size_t{1} << 21;
    const size_t alignment = static_cast<size_t>(bytes) >= kHugePage ? kHugePage : 64;
    const size_t size = (static_cast<size_t>(bytes) + alignment - 1) / alignment * alignment;
    packed_.reset(std::aligned_alloc(alignment, std::max(size, alignment)));
    if (!packed_) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (alignment == kHugePage) madvise(packed_.get(), size, MADV_HUGEPAGE);
#endif
  }

  const void* stored_;
  std::unique_ptr<void, Free> packed_;
  std::vector<unsigned char> owned_rows_;  // selected stored rows (variants without packing)
};

}  // namespace

CpuDevice::CpuDevice(int threads) : pool_(checked_threads(threads)) {}

const tensor::Allocator& CpuDevice::allocator() const { return tensor::host_allocator(); }

std::string CpuDevice::description() const {
  return std::string(kernels::cpu::isa_name(kernels::cpu::kernels().isa)) + " kernels, " +
         std::to_string(threads()) + (threads() == 1 ? " thread" : " threads");
}

std::unique_ptr<DeviceMatrix> CpuDevice::prepare_matrix(const tensor::WeightMatrix& matrix,
                                                        const ReleaseSlice& release) const {
  return std::make_unique<CpuMatrix>(matrix, release);
}

std::unique_ptr<DeviceMatrix> CpuDevice::select_rows(const tensor::WeightMatrix& matrix,
                                                     const DeviceMatrix& prepared,
                                                     const int32_t* ids, int64_t count) const {
  return std::make_unique<CpuMatrix>(static_cast<const CpuMatrix&>(prepared), matrix, ids, count);
}

int64_t CpuDevice::max_attention_keys(int64_t) const { return std::numeric_limits<int64_t>::max(); }

void CpuDevice::linear(const float* x, int64_t m, const tensor::WeightMatrix& weight,
                       const DeviceMatrix& prepared, const LinearOutput& output, float* y) const {
  const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
  const void* packed = static_cast<const CpuMatrix&>(prepared).kernel_data();
  kernels::cpu::LinearEpilogue epilogue;
  epilogue.bias = output.bias;
  if (output.activation) {
    epilogue.activate = true;
    epilogue.activation = *output.activation;
  }
  epilogue.residual = output.residual;
  const int64_t k = weight.cols, n = weight.rows;
  // Threads take whole panels of columns (the kernels' layout), and at least
  // kMinMultiplyAdds of work each, so that a worker's wake-up (microseconds) stays below the
  // work it takes. Measured on 2 idle cores (`pytransformer bench`, 2 threads): 2^15 against
  // the earlier 2^19, batch-1 greedy on OPUS-MT shapes 131 vs 84 tok/s (f32) and 547 vs 318
  // (int8_all), SmolLM2 tg128 212 vs 140 t/s (gguf); 2^19 had been chosen with the other core
  // busy, where a descheduled worker stalls the product instead.
  const int64_t block = kernels.panel_columns;
  const int64_t blocks = (n + block - 1) / block;
  constexpr int64_t kMinMultiplyAdds = int64_t{1} << 15;
  const int64_t block_work = std::max<int64_t>(1, m * k * block);
  const int64_t min_blocks = (kMinMultiplyAdds + block_work - 1) / block_work;
  if (weight.dtype == DType::INT8) {
    // Quantised rows of x, reused across calls (no allocation once grown).
    thread_local std::vector<int8_t> quantized;
    thread_local std::vector<float> scales;
    quantized.resize(static_cast<size_t>(m * kernels::ref::quantized_row_stride(k)));
    scales.resize(static_cast<size_t>(m));
    // Pointers, not the thread_local names: those would mean each worker's own buffers.
    int8_t* const rows = quantized.data();
    float* const row_scales = scales.data();
    if (weight.input_scale > 0.0f) {
      kernels.quantize_rows_fixed(x, m, k, weight.input_scale, rows, row_scales);
    } else {
      kernels.quantize_rows(x, m, k, rows, row_scales);
    }
    pool_.parallel_for(blocks, min_blocks, [&](int64_t begin, int64_t end) {
      kernels.linear_int8(rows, row_scales, m, k, packed, weight.row_scales, n, begin * block,
                          std::min(n, end * block), epilogue, y);
    });
    return;
  }
  pool_.parallel_for(blocks, min_blocks, [&](int64_t begin, int64_t end) {
    kernels.linear_float(x, m, k, packed, weight.dtype, n, begin * block,
                         std::min(n, end * block), epilogue, y);
  });
}

void CpuDevice::layer_norm(const float* x, const float* residual, const float* gamma,
                           const float* beta, int64_t rows, int64_t dim, double epsilon,
                           float* y) const {
  kernels::cpu::kernels().layer_norm(x, residual, gamma, beta, rows, dim, epsilon, y);
}

void CpuDevice::rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim,
                         double epsilon, float* y) const {
  kernels::cpu::kernels().rms_norm(x, gamma, rows, dim, epsilon, y);
}

void CpuDevice::gated_activation(format::Activation kind, const float* x, int64_t rows,
                                 int64_t width, float* y) const {
  kernels::cpu::kernels().gated_activation(kind, x, rows, width, y);
}

void CpuDevice::ssru_step(const float* gates, const float* previous, const int32_t* parent,
                          int64_t n, int64_t d, bool accumulate, float* cells, float* out) const {
  kernels::cpu::kernels().ssru_step(gates, previous, parent, n, d, accumulate, cells, out);
}

void CpuDevice::apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim,
                             int64_t rotary_dim, const int32_t* positions, const float* cos,
                             const float* sin, kernels::ref::RotaryLayout layout) const {
  kernels::cpu::kernels().apply_rotary(x, rows, heads, head_dim, rotary_dim, positions, cos, sin,
                                       layout);
}

void CpuDevice::attention(const float* q, const float* k, const float* v, int64_t batch,
                          int64_t q_len, int64_t kv_len, int64_t heads, int64_t kv_heads,
                          int64_t head_dim, const int32_t* kv_index, int64_t,
                          const int64_t* kv_lengths, bool causal, float scale, float* out,
                          float* probabilities) const {
  const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
  const int64_t width = heads * head_dim, kv_width = kv_heads * head_dim;
  pool_.parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
    const int64_t q_offset = begin * q_len * width;
    // With the identity map, the thread's kv entries start at `begin` too.
    const int64_t kv_offset = kv_index ? 0 : begin * kv_len * kv_width;
    kernels.attention(q + q_offset, k + kv_offset, v + kv_offset, end - begin, q_len, kv_len,
                      heads, kv_heads, head_dim, kv_index ? kv_index + begin : nullptr,
                      kv_index ? kv_lengths : kv_lengths + begin, causal, scale, out + q_offset,
                      probabilities ? probabilities + begin * heads * q_len * kv_len : nullptr);
  });
}

void CpuDevice::cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                                 int64_t head_dim, int64_t steps, const float* const* step_keys,
                                 const float* const* step_values, const int32_t* ancestry,
                                 int64_t ancestry_stride, float scale, float* out) const {
  const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
  const int64_t width = heads * head_dim;
  pool_.parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    kernels.cached_attention(q + begin * width, end - begin, heads, kv_heads, head_dim, steps,
                             step_keys, step_values, ancestry + begin * ancestry_stride,
                             ancestry_stride, scale, out + begin * width);
  });
}

void CpuDevice::embedding(const int32_t* ids, const int64_t* positions, int64_t count,
                          const void* table, DType dtype, const float* row_scales, int64_t dim,
                          float scale, const float* position_table, float* out) const {
  kernels::ref::embedding(ids, positions, count, table, dtype, row_scales, dim, scale,
                          position_table, out);
}

void CpuDevice::zero(float* y, int64_t count) const { std::fill(y, y + count, 0.0f); }

}  // namespace pytransformer::ops
