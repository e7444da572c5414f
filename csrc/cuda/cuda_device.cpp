#include "cuda/cuda_device.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "cuda/device_buffer.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/add.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/layer_norm.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rotary.h"
#include "kernels/cuda/ssru.h"
#include "kernels/ref/convert.h"
#include "pytransformer/error.h"
#ifdef PYTRANSFORMER_CUBLAS
#include "kernels/cuda/linear_cublas.h"
#endif

namespace pytransformer::cuda {

namespace kc = kernels::cuda;

namespace {

// Makes `device` the calling thread's current device for the duration of a scope.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    kc::check(cudaGetDevice(&previous_), "cudaGetDevice");
    kc::check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

// One model call: the device's lock, and the device made current.
class CudaCall final : public ops::Device::Call {
 public:
  CudaCall(std::mutex& mutex, int device) : lock_(mutex), guard_(device) {}

 private:
  std::lock_guard<std::mutex> lock_;
  DeviceGuard guard_;
};

// Device memory of one GPU; copies go through the device's stream and are complete on return.
class CudaAllocator final : public tensor::Allocator {
 public:
  CudaAllocator(int device, cudaStream_t stream) : device_(device), stream_(stream) {}

  bool host_accessible() const override { return false; }

  void* allocate(size_t bytes) const override {
    DeviceGuard guard(device_);
    void* memory = nullptr;
    const cudaError_t status = cudaMalloc(&memory, std::max<size_t>(bytes, 1));
    if (status != cudaSuccess) {
      cudaGetLastError();
      throw kc::CudaError("cannot allocate " + std::to_string(bytes) + " bytes of GPU memory (" +
                          cudaGetErrorString(status) + ")");
    }
    return memory;
  }
  void deallocate(void* memory) const noexcept override {
    cudaFree(memory);  // errors ignored: also runs at interpreter shutdown
  }
  void copy_from_host(const void* host, size_t bytes, void* memory) const override {
    copy_and_wait(memory, host, bytes, cudaMemcpyHostToDevice, "cudaMemcpyAsync (to the GPU)");
  }
  void copy_to_host(const void* memory, size_t bytes, void* host) const override {
    copy_and_wait(host, memory, bytes, cudaMemcpyDeviceToHost, "cudaMemcpyAsync (from the GPU)");
  }
  void copy(const void* from, size_t bytes, void* to) const override {
    copy_and_wait(to, from, bytes, cudaMemcpyDeviceToDevice, "cudaMemcpyAsync (on the GPU)");
  }

 private:
  void copy_and_wait(void* to, const void* from, size_t bytes, cudaMemcpyKind kind,
                     const char* what) const {
    if (bytes == 0) return;
    kc::check(cudaMemcpyAsync(to, from, bytes, kind, stream_), what);
    kc::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

  int device_;
  cudaStream_t stream_;
};

struct CudaMatrix final : ops::DeviceMatrix {
  kc::DeviceWeight weight;
  DeviceBuffer<float> expanded;  // a q8_0 / q4_1 matrix's values in f32 (weight.data)
};

}  // namespace

bool cublas_available() {
#ifdef PYTRANSFORMER_CUBLAS
  return true;
#else
  return false;
#endif
}

struct CudaDevice::Impl {
  int device;
  GemmBackend gemm;
  cudaStream_t stream = nullptr;
  std::unique_ptr<CudaAllocator> allocator;
  mutable std::mutex mutex;  // held by begin_call(): everything below is used under it
  // Uploaded weights by (host address, bytes): tied weights are uploaded once.
  mutable std::map<std::pair<const void*, size_t>, DeviceBuffer<unsigned char>> uploads;
  mutable int64_t largest_converted_matrix = 0;  // elements of the largest f16/bf16 matrix
  // Workspaces, grown on demand: the int8 path's quantised activations, the residual pass's
  // product, the cuBLAS path's f32 copy of a weight.
  mutable DeviceBuffer<int8_t> quantized_rows;
  mutable DeviceBuffer<float> quantized_scales;
  mutable DeviceBuffer<float> product;
#ifdef PYTRANSFORMER_CUBLAS
  std::unique_ptr<kc::CublasHandle> cublas;
  mutable DeviceBuffer<float> converted_weight;
#endif
  // Staging of the host arrays the ops pass, grown on demand.
  mutable DeviceBuffer<int32_t> ids, kv_index, ancestry, rotary_positions, ssru_parents;
  mutable DeviceBuffer<int64_t> positions, kv_lengths;
  mutable DeviceBuffer<const float*> chunk_bases;

  void synchronize() const { kc::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); }

  // `buffer` with room for `count` elements; queued kernels may still read a buffer being
  // replaced, so the stream is drained first.
  template <typename T>
  T* room(DeviceBuffer<T>& buffer, size_t count) const {
    if (buffer.size() < count) {
      synchronize();
      buffer = DeviceBuffer<T>(std::max(count, buffer.size() * 2));
    }
    return buffer.get();
  }

  // The host array in `buffer` (queued on the stream: the host side may be reused at once).
  template <typename T>
  const T* staged(DeviceBuffer<T>& buffer, const T* host, size_t count) const {
    T* device_copy = room(buffer, std::max<size_t>(count, 1));
    upload(host, count, device_copy, stream);
    return device_copy;
  }
};

CudaDevice::CudaDevice(int device, GemmBackend gemm) : impl_(std::make_unique<Impl>()) {
  const std::string problem = kc::device_problem(device);
  if (!problem.empty()) throw CudaUnavailable("CUDA requested but " + problem);
  if (gemm == GemmBackend::CUBLAS && !cublas_available()) {
    throw InvalidArgument("gemm='cublas' is not available: this build of the CUDA backend has no cuBLAS");
  }
  impl_->device = device;
  impl_->gemm = gemm;
  DeviceGuard guard(device);
  kc::check(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  impl_->allocator = std::make_unique<CudaAllocator>(device, impl_->stream);
#ifdef PYTRANSFORMER_CUBLAS
  if (gemm == GemmBackend::CUBLAS) impl_->cublas = std::make_unique<kc::CublasHandle>();
#endif
}

CudaDevice::~CudaDevice() {
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

int CudaDevice::index() const { return impl_->device; }
GemmBackend CudaDevice::gemm() const { return impl_->gemm; }
const tensor::Allocator& CudaDevice::allocator() const { return *impl_->allocator; }
std::string CudaDevice::name() const { return "cuda:" + std::to_string(impl_->device); }

std::string CudaDevice::description() const {
  return kc::device_description(impl_->device) +
         (impl_->gemm == GemmBackend::CUBLAS ? ", cuBLAS GEMM" : ", exact GEMM");
}

std::unique_ptr<ops::Device::Call> CudaDevice::begin_call() const {
  return std::make_unique<CudaCall>(impl_->mutex, impl_->device);
}

const void* CudaDevice::weight(const void* host, size_t bytes) const {
  auto found = impl_->uploads.find({host, bytes});
  if (found != impl_->uploads.end()) return found->second.get();
  DeviceBuffer<unsigned char> buffer(bytes);
  kc::check(cudaMemcpy(buffer.get(), host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
  const void* device_copy = buffer.get();
  impl_->uploads.emplace(std::make_pair(host, bytes), std::move(buffer));
  return device_copy;
}

std::unique_ptr<ops::DeviceMatrix> CudaDevice::prepare_matrix(const tensor::WeightMatrix& matrix,
                                                              const ops::ReleaseSlice&) const {
  auto prepared = std::make_unique<CudaMatrix>();
  kc::DeviceWeight& weight = prepared->weight;
  if (is_block_dtype(matrix.dtype)) {
    // Block matrices run as f32 on the GPU: their exact values (kernels/ref/convert.h),
    // expanded on the host a row at a time and uploaded.
    std::vector<float> values(static_cast<size_t>(matrix.rows * matrix.cols));
    for (int64_t r = 0; r < matrix.rows; ++r) {
      kernels::ref::convert_row(matrix.data, matrix.dtype, nullptr, r, matrix.cols,
                                values.data() + r * matrix.cols);
    }
    prepared->expanded = DeviceBuffer<float>(values.size());
    kc::check(cudaMemcpy(prepared->expanded.get(), values.data(), sizeof(float) * values.size(),
                         cudaMemcpyHostToDevice),
              "cudaMemcpy (weights)");
    weight.data = prepared->expanded.get();
    weight.dtype = DType::F32;
    weight.rows = matrix.rows;
    weight.cols = matrix.cols;
    return prepared;
  }
  weight.data = this->weight(matrix.data, dtype_size(matrix.dtype) *
                                              static_cast<size_t>(matrix.rows * matrix.cols));
  weight.dtype = matrix.dtype;
  weight.rows = matrix.rows;
  weight.cols = matrix.cols;
  if (matrix.dtype == DType::INT8) {
    weight.input_scale = matrix.input_scale;
    weight.row_scales = static_cast<const float*>(
        this->weight(matrix.row_scales, sizeof(float) * static_cast<size_t>(matrix.rows)));
  }
  if (matrix.dtype == DType::F16 || matrix.dtype == DType::BF16) {
    impl_->largest_converted_matrix =
        std::max(impl_->largest_converted_matrix, matrix.rows * matrix.cols);
  }
  return prepared;
}

int64_t CudaDevice::max_attention_keys(int64_t head_dim) const {
  return kc::max_attention_keys(head_dim);
}

void CudaDevice::linear(const float* x, int64_t m, const tensor::WeightMatrix&,
                        const ops::DeviceMatrix& prepared, const ops::LinearOutput& output,
                        float* y) const {
  const Impl& d = *impl_;
  const kc::DeviceWeight& weight = static_cast<const CudaMatrix&>(prepared).weight;
  const size_t outputs = static_cast<size_t>(m * weight.rows);
  // The residual pass: the product goes to a workspace when y is the residual itself, then
  // y += the other; v + r and r + v are the same float, as in the CPU's fused pass.
  float* product = output.residual == y ? d.room(d.product, std::max<size_t>(outputs, 1)) : y;
  if (weight.dtype == DType::INT8) {  // whatever the GEMM backend: the int8 reference
    int8_t* rows = d.room(d.quantized_rows, std::max<size_t>(static_cast<size_t>(m * weight.cols), 1));
    float* scales = d.room(d.quantized_scales, std::max<size_t>(static_cast<size_t>(m), 1));
    kc::linear_int8(x, m, weight, output.bias, output.activation, rows, scales, product, d.stream);
  } else {
#ifdef PYTRANSFORMER_CUBLAS
    if (d.gemm == GemmBackend::CUBLAS) {
      float* converted =
          d.room(d.converted_weight, static_cast<size_t>(std::max<int64_t>(d.largest_converted_matrix, 1)));
      kc::linear_cublas(*d.cublas, x, m, weight, output.bias, output.activation, converted,
                        product, d.stream);
    } else {
      kc::linear(x, m, weight, output.bias, output.activation, product, d.stream);
    }
#else
    kc::linear(x, m, weight, output.bias, output.activation, product, d.stream);
#endif
  }
  if (output.residual) {
    kc::add(output.residual == y ? product : output.residual, y, static_cast<int64_t>(outputs),
            d.stream);
  }
}

void CudaDevice::layer_norm(const float* x, const float* residual, const float* gamma,
                            const float* beta, int64_t rows, int64_t dim, double epsilon,
                            float* y) const {
  kc::layer_norm(x, residual, gamma, beta, rows, dim, epsilon, y, impl_->stream);
}

void CudaDevice::rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim,
                          double epsilon, float* y) const {
  kc::rms_norm(x, gamma, rows, dim, epsilon, y, impl_->stream);
}

void CudaDevice::ssru_step(const float* gates, const float* previous, const int32_t* parent,
                           int64_t n, int64_t d, bool accumulate, float* cells, float* out) const {
  const Impl& dev = *impl_;
  const int32_t* device_parent =
      previous ? dev.staged(dev.ssru_parents, parent, static_cast<size_t>(n)) : nullptr;
  kc::ssru_step(gates, previous, device_parent, n, d, accumulate, cells, out, dev.stream);
}

void CudaDevice::gated_activation(format::Activation kind, const float* x, int64_t rows,
                                  int64_t width, float* y) const {
  kc::gated_activation(kind, x, rows, width, y, impl_->stream);
}

void CudaDevice::apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim,
                              int64_t rotary_dim, const int32_t* positions, const float* cos,
                              const float* sin, kernels::ref::RotaryLayout layout) const {
  const Impl& d = *impl_;
  const int32_t* device_positions =
      d.staged(d.rotary_positions, positions, static_cast<size_t>(rows));
  kc::apply_rotary(x, rows, heads, head_dim, rotary_dim, device_positions, cos, sin, layout,
                   d.stream);
}

void CudaDevice::attention(const float* q, const float* k, const float* v, int64_t batch,
                           int64_t q_len, int64_t kv_len, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, const int32_t* kv_index, int64_t kv_batch,
                           const int64_t* kv_lengths, bool causal, float scale, float* out,
                           float* probabilities) const {
  const Impl& d = *impl_;
  const int32_t* device_index =
      kv_index ? d.staged(d.kv_index, kv_index, static_cast<size_t>(batch)) : nullptr;
  const int64_t* device_lengths = d.staged(d.kv_lengths, kv_lengths, static_cast<size_t>(kv_batch));
  kc::attention(q, k, v, batch, q_len, kv_len, heads, kv_heads, head_dim, device_index,
                device_lengths, causal, scale, out, probabilities, d.stream);
}

void CudaDevice::cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                                  int64_t head_dim, int64_t steps, const float* const* step_keys,
                                  const float* const* step_values, const int32_t* ancestry,
                                  int64_t ancestry_stride, float scale, float* out) const {
  const Impl& d = *impl_;
  const float** bases = d.room(d.chunk_bases, static_cast<size_t>(2 * steps));
  upload(step_keys, static_cast<size_t>(steps), bases, d.stream);
  upload(step_values, static_cast<size_t>(steps), bases + steps, d.stream);
  const int32_t* device_ancestry =
      d.staged(d.ancestry, ancestry, static_cast<size_t>(n * ancestry_stride));
  kc::cached_attention(q, n, heads, kv_heads, head_dim, steps, bases, bases + steps,
                       device_ancestry, ancestry_stride, scale, out, d.stream);
}

void CudaDevice::embedding(const int32_t* ids, const int64_t* positions, int64_t count,
                           const void* table, DType dtype, const float* row_scales, int64_t dim,
                           float scale, const float* position_table, float* out) const {
  const Impl& d = *impl_;
  const int32_t* device_ids = d.staged(d.ids, ids, static_cast<size_t>(count));
  const int64_t* device_positions = d.staged(d.positions, positions, static_cast<size_t>(count));
  kc::embedding(device_ids, device_positions, count, table, dtype, row_scales, dim, scale,
                position_table, out, d.stream);
}

void CudaDevice::zero(float* y, int64_t count) const {
  if (count <= 0) return;
  kc::check(cudaMemsetAsync(y, 0, sizeof(float) * static_cast<size_t>(count), impl_->stream),
            "cudaMemsetAsync");
}

}  // namespace pytransformer::cuda
