// _cuda.ops: each CUDA kernel and its scalar reference (csrc/kernels/ref) on NumPy arrays, so the
// tests can compare them on awkward shapes (tests/python/test_cuda_ops.py). backend="cuda" runs
// the kernel on GPU 0 (uploading the inputs, downloading the result); backend="reference" runs
// kernels::ref on the host. Arguments mirror the kernels' headers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cuda_runtime_api.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cuda/cuda_device.h"
#include "cuda/device_buffer.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/add.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/layer_norm.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rotary.h"
#include "kernels/cuda/softmax.h"
#include "kernels/ref/activation.h"
#include "kernels/ref/add.h"
#include "kernels/ref/attention.h"
#include "kernels/ref/embedding.h"
#include "kernels/ref/layer_norm.h"
#include "kernels/ref/linear.h"
#include "kernels/ref/linear_int8.h"
#include "kernels/ref/rms_norm.h"
#include "kernels/ref/rotary.h"
#include "kernels/ref/softmax.h"
#include "pytransformer/error.h"
#ifdef PYTRANSFORMER_CUBLAS
#include "kernels/cuda/linear_cublas.h"
#endif

namespace py = pybind11;

namespace pytransformer::python::cuda {
namespace {

namespace kc = kernels::cuda;
namespace ref = kernels::ref;
using pytransformer::cuda::DeviceBuffer;
using pytransformer::cuda::download;
using pytransformer::cuda::upload;

using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Int32s = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using Int64s = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

[[noreturn]] void invalid(const std::string& message) { throw InvalidArgument(message); }

bool on_gpu(const std::string& backend) {
  if (backend == "reference") return false;
  if (backend != "cuda") invalid("backend must be 'cuda' or 'reference', got '" + backend + "'");
  const std::string problem = kc::device_problem(0);
  if (!problem.empty()) throw pytransformer::cuda::CudaUnavailable("CUDA requested but " + problem);
  kc::check(cudaSetDevice(0), "cudaSetDevice");
  return true;
}

void require(bool condition, const std::string& message) {
  if (!condition) invalid(message);
}

format::Activation parse_activation(const std::string& name) {
  if (name == "relu") return format::Activation::RELU;
  if (name == "swish") return format::Activation::SWISH;
  if (name == "gelu") return format::Activation::GELU;
  if (name == "gelu_tanh") return format::Activation::GELU_TANH;
  invalid("unknown activation '" + name + "'");
}

DType parse_dtype(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  if (name == "bf16") return DType::BF16;
  if (name == "int8") return DType::INT8;
  invalid("dtype must be f32, f16, bf16 or int8, got '" + name + "'");
}

// A host array copied to the device (an empty buffer for a zero-size array).
template <typename T>
DeviceBuffer<T> to_device(const T* data, size_t count) {
  DeviceBuffer<T> buffer(count);
  upload(data, count, buffer.get(), nullptr);
  return buffer;
}

template <typename T>
DeviceBuffer<T> to_device(const py::array_t<T, py::array::c_style | py::array::forcecast>& array) {
  return to_device(array.data(), static_cast<size_t>(array.size()));
}

void finish_gpu(const DeviceBuffer<float>& result, py::array_t<float>& out) {
  download(result.get(), static_cast<size_t>(out.size()), out.mutable_data(), nullptr);
  kc::check(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize");
}

// A stored weight matrix [rows, cols]: f32 values, or the raw 16-bit patterns of f16/bf16
// (uint16 arrays), or int8 values with row_scales.
struct HostWeight {
  py::array array;
  DType dtype;
  int64_t rows, cols;
  std::vector<float> row_scales;
};

HostWeight host_weight(const py::array& weight, const std::string& dtype_name,
                       const std::optional<Floats>& row_scales) {
  HostWeight host{py::array(), parse_dtype(dtype_name), 0, 0, {}};
  require(weight.ndim() == 2, "weight must be a matrix");
  switch (host.dtype) {
    case DType::F32: host.array = Floats::ensure(weight); break;
    case DType::F16:
    case DType::BF16:
      host.array = py::array_t<uint16_t, py::array::c_style>::ensure(weight);
      require(py::dtype::of<uint16_t>().is(weight.dtype()), "f16/bf16 weights are uint16 bit patterns");
      break;
    case DType::INT8:
      host.array = py::array_t<int8_t, py::array::c_style>::ensure(weight);
      require(py::dtype::of<int8_t>().is(weight.dtype()), "int8 weights must be int8");
      break;
    case DType::Q8_0:
    case DType::Q4_1:
      require(false, "block weights are not taken here");
      break;
  }
  host.rows = weight.shape(0);
  host.cols = weight.shape(1);
  if (host.dtype == DType::INT8) {
    require(row_scales.has_value() && row_scales->size() == host.rows, "int8 weights need row_scales [rows]");
    host.row_scales.assign(row_scales->data(), row_scales->data() + host.rows);
  }
  return host;
}

py::array_t<float> linear(const Floats& x, const py::array& weight, const std::string& dtype,
                          const std::optional<Floats>& row_scales, const std::optional<Floats>& bias,
                          const std::optional<std::string>& activation, const std::string& backend) {
  const HostWeight w = host_weight(weight, dtype, row_scales);
  require(x.ndim() == 2 && x.shape(1) == w.cols, "x must be [m, k] with k = weight columns");
  require(!bias || bias->size() == w.rows, "bias must have one value per weight row");
  const int64_t m = x.shape(0), n = w.rows, k = w.cols;
  std::optional<format::Activation> kind;
  if (activation) kind = parse_activation(*activation);
  py::array_t<float> y({m, n});
  const std::string gemm = backend == "cublas" ? "cuda" : backend;
  const float* host_bias = bias ? bias->data() : nullptr;
  if (!on_gpu(gemm)) {
    if (w.dtype == DType::INT8) {
      std::vector<int8_t> quantized(static_cast<size_t>(m * ref::quantized_row_stride(k)));
      std::vector<float> scales(static_cast<size_t>(m));
      ref::quantize_rows(x.data(), m, k, quantized.data(), scales.data());
      ref::linear_int8(quantized.data(), scales.data(), m, k, static_cast<const int8_t*>(w.array.data()),
                       w.row_scales.data(), host_bias, n, 0, n, y.mutable_data());
    } else {
      ref::linear(x.data(), m, k, w.array.data(), w.dtype, nullptr, host_bias, n, 0, n, y.mutable_data());
    }
    if (kind) ref::activation(*kind, y.mutable_data(), m * n);
    return y;
  }
  const size_t bytes = dtype_size(w.dtype) * static_cast<size_t>(n * k);
  DeviceBuffer<unsigned char> device_weight =
      to_device(static_cast<const unsigned char*>(w.array.data()), bytes);
  DeviceBuffer<float> scales = to_device(w.row_scales.data(), w.row_scales.size());
  DeviceBuffer<float> device_bias = bias ? to_device(*bias) : DeviceBuffer<float>();
  DeviceBuffer<float> device_x = to_device(x), device_y(static_cast<size_t>(m * n));
  kc::DeviceWeight matrix{device_weight.get(), w.dtype, n, k, scales.get()};
  const format::Activation* epilogue = kind ? &*kind : nullptr;
  if (w.dtype == DType::INT8) {  // one int8 kernel whatever the backend
    DeviceBuffer<int8_t> quantized(static_cast<size_t>(m * k));
    DeviceBuffer<float> row_scales(static_cast<size_t>(m));
    kc::linear_int8(device_x.get(), m, matrix, device_bias.get(), epilogue, quantized.get(),
                    row_scales.get(), device_y.get(), nullptr);
  } else if (backend == "cublas") {
#ifdef PYTRANSFORMER_CUBLAS
    kc::CublasHandle handle;
    DeviceBuffer<float> workspace(w.dtype == DType::F32 ? 0 : static_cast<size_t>(n * k));
    kc::linear_cublas(handle, device_x.get(), m, matrix, device_bias.get(), epilogue, workspace.get(),
                      device_y.get(), nullptr);
#else
    invalid("this build of the CUDA backend has no cuBLAS");
#endif
  } else {
    kc::linear(device_x.get(), m, matrix, device_bias.get(), epilogue, device_y.get(), nullptr);
  }
  finish_gpu(device_y, y);
  return y;
}

py::array_t<float> layer_norm(const Floats& x, const std::optional<Floats>& residual, const Floats& gamma,
                              const Floats& beta, double epsilon, const std::string& backend) {
  require(x.ndim() == 2, "x must be [rows, dim]");
  const int64_t rows = x.shape(0), dim = x.shape(1);
  require(!residual || (residual->ndim() == 2 && residual->shape(0) == rows && residual->shape(1) == dim),
          "residual must have x's shape");
  require(gamma.size() == dim && beta.size() == dim, "gamma and beta must be [dim]");
  py::array_t<float> y({rows, dim});
  if (!on_gpu(backend)) {
    ref::layer_norm(x.data(), residual ? residual->data() : nullptr, gamma.data(), beta.data(), rows, dim,
                    epsilon, y.mutable_data());
    return y;
  }
  DeviceBuffer<float> device_x = to_device(x), device_gamma = to_device(gamma), device_beta = to_device(beta);
  DeviceBuffer<float> device_residual = residual ? to_device(*residual) : DeviceBuffer<float>();
  // In place over the residual when there is one (y may alias it), else over x.
  float* out = residual ? device_residual.get() : device_x.get();
  kc::layer_norm(device_x.get(), device_residual.get(), device_gamma.get(), device_beta.get(), rows, dim,
                 epsilon, out, nullptr);
  finish_gpu(residual ? device_residual : device_x, y);
  return y;
}

py::array_t<float> rms_norm(const Floats& x, const Floats& gamma, double epsilon,
                            const std::string& backend) {
  require(x.ndim() == 2, "x must be [rows, dim]");
  const int64_t rows = x.shape(0), dim = x.shape(1);
  require(gamma.size() == dim, "gamma must be [dim]");
  py::array_t<float> y({rows, dim});
  if (!on_gpu(backend)) {
    ref::rms_norm(x.data(), gamma.data(), rows, dim, epsilon, y.mutable_data());
    return y;
  }
  DeviceBuffer<float> device_x = to_device(x), device_gamma = to_device(gamma);
  kc::rms_norm(device_x.get(), device_gamma.get(), rows, dim, epsilon, device_x.get(), nullptr);
  finish_gpu(device_x, y);
  return y;
}

py::array_t<float> gated_activation(const std::string& name, const Floats& x,
                                    const std::string& backend) {
  require(x.ndim() == 2 && x.shape(1) % 2 == 0, "x must be [rows, 2 * width]");
  const format::Activation kind = parse_activation(name);
  const int64_t rows = x.shape(0), width = x.shape(1) / 2;
  py::array_t<float> y({rows, width});
  if (!on_gpu(backend)) {
    ref::gated_activation(kind, x.data(), rows, width, y.mutable_data());
    return y;
  }
  DeviceBuffer<float> device_x = to_device(x), device_y(static_cast<size_t>(rows * width));
  kc::gated_activation(kind, device_x.get(), rows, width, device_y.get(), nullptr);
  finish_gpu(device_y, y);
  return y;
}

// x [rows, heads * head_dim] rotated at `positions` with tables of `table_positions` rows.
py::array_t<float> rotary(const Floats& x, int64_t heads, int64_t rotary_dim, const Int32s& positions,
                          double base, int64_t table_positions, bool interleaved,
                          const std::string& backend) {
  require(x.ndim() == 2 && heads > 0 && x.shape(1) % heads == 0, "x must be [rows, heads * head_dim]");
  const int64_t rows = x.shape(0), head_dim = x.shape(1) / heads;
  require(rotary_dim > 0 && rotary_dim % 2 == 0 && rotary_dim <= head_dim,
          "rotary_dim must be even, positive and at most head_dim");
  require(positions.size() == rows, "positions must be [rows]");
  for (int64_t r = 0; r < rows; ++r) {
    require(positions.data()[r] >= 0 && positions.data()[r] < table_positions,
            "positions must be below table_positions");
  }
  const ref::RotaryLayout layout =
      interleaved ? ref::RotaryLayout::INTERLEAVED : ref::RotaryLayout::HALF_SPLIT;
  const size_t table_size = static_cast<size_t>(table_positions * (rotary_dim / 2));
  std::vector<float> cos(table_size), sin(table_size);
  ref::rotary_tables(base, rotary_dim, table_positions, cos.data(), sin.data());
  py::array_t<float> y({rows, x.shape(1)});
  std::memcpy(y.mutable_data(), x.data(), sizeof(float) * x.size());
  if (!on_gpu(backend)) {
    ref::apply_rotary(y.mutable_data(), rows, heads, head_dim, rotary_dim, positions.data(),
                      cos.data(), sin.data(), layout);
    return y;
  }
  DeviceBuffer<float> device_x = to_device(x), device_cos = to_device(cos.data(), table_size),
                      device_sin = to_device(sin.data(), table_size);
  DeviceBuffer<int32_t> device_positions = to_device(positions);
  kc::apply_rotary(device_x.get(), rows, heads, head_dim, rotary_dim, device_positions.get(),
                   device_cos.get(), device_sin.get(), layout, nullptr);
  finish_gpu(device_x, y);
  return y;
}

py::array_t<float> softmax(const Floats& x, const std::string& backend) {
  require(x.ndim() == 2 && x.shape(1) >= 1, "x must be [rows, cols] with cols >= 1");
  const int64_t rows = x.shape(0), cols = x.shape(1);
  py::array_t<float> y({rows, cols});
  if (!on_gpu(backend)) {
    std::memcpy(y.mutable_data(), x.data(), sizeof(float) * rows * cols);
    ref::softmax(y.mutable_data(), rows, cols);
    return y;
  }
  DeviceBuffer<float> device_x = to_device(x);
  kc::softmax(device_x.get(), rows, cols, nullptr);
  finish_gpu(device_x, y);
  return y;
}

py::array_t<float> activation(const std::string& name, const Floats& x, const std::string& backend) {
  const format::Activation kind = parse_activation(name);
  py::array_t<float> y(x.size());
  if (!on_gpu(backend)) {
    std::memcpy(y.mutable_data(), x.data(), sizeof(float) * x.size());
    ref::activation(kind, y.mutable_data(), x.size());
    return y;
  }
  DeviceBuffer<float> device_x = to_device(x);
  kc::activation(kind, device_x.get(), x.size(), nullptr);
  finish_gpu(device_x, y);
  return y;
}

py::array_t<float> add(const Floats& x, const Floats& y, const std::string& backend) {
  require(x.size() == y.size(), "x and y must have the same size");
  py::array_t<float> out(y.size());
  if (!on_gpu(backend)) {
    std::memcpy(out.mutable_data(), y.data(), sizeof(float) * y.size());
    ref::add(x.data(), out.mutable_data(), x.size());
    return out;
  }
  DeviceBuffer<float> device_x = to_device(x), device_y = to_device(y);
  kc::add(device_x.get(), device_y.get(), x.size(), nullptr);
  finish_gpu(device_y, out);
  return out;
}

py::array_t<float> embedding(const Int32s& ids, const Int64s& positions, const py::array& table,
                             const std::string& dtype, const std::optional<Floats>& row_scales, float scale,
                             const Floats& position_table, const std::string& backend) {
  const HostWeight w = host_weight(table, dtype, row_scales);
  const int64_t count = ids.size(), dim = w.cols;
  require(positions.size() == count, "ids and positions must have the same length");
  require(position_table.ndim() == 2 && position_table.shape(1) == dim, "position_table must be [*, dim]");
  for (int64_t i = 0; i < count; ++i) {
    require(ids.data()[i] >= 0 && ids.data()[i] < w.rows, "id out of range");
    require(positions.data()[i] >= 0 && positions.data()[i] < position_table.shape(0), "position out of range");
  }
  py::array_t<float> out({count, dim});
  if (!on_gpu(backend)) {
    ref::embedding(ids.data(), positions.data(), count, w.array.data(), w.dtype, w.row_scales.data(), dim, scale,
                   position_table.data(), out.mutable_data());
    return out;
  }
  DeviceBuffer<unsigned char> device_table = to_device(
      static_cast<const unsigned char*>(w.array.data()), dtype_size(w.dtype) * static_cast<size_t>(w.rows * dim));
  DeviceBuffer<float> scales = to_device(w.row_scales.data(), w.row_scales.size());
  DeviceBuffer<int32_t> device_ids = to_device(ids);
  DeviceBuffer<int64_t> device_positions = to_device(positions);
  DeviceBuffer<float> device_positions_table = to_device(position_table), device_out(static_cast<size_t>(count * dim));
  kc::embedding(device_ids.get(), device_positions.get(), count, device_table.get(), w.dtype, scales.get(), dim,
                scale, device_positions_table.get(), device_out.get(), nullptr);
  finish_gpu(device_out, out);
  return out;
}

// kv_heads (default: heads) must divide heads; k and v are [kv_batch, kv_len, kv_width] with
// kv_width = kv_heads * head_dim. Returns out [batch, q_len, width] and, with probabilities,
// [batch, heads, q_len, kv_len].
py::object attention(const Floats& q, const Floats& k, const Floats& v, int64_t heads,
                     const std::optional<Int32s>& kv_index, const Int64s& kv_lengths, float scale,
                     bool probabilities, std::optional<int64_t> kv_heads_argument, bool causal,
                     const std::string& backend) {
  require(q.ndim() == 3 && k.ndim() == 3 && v.ndim() == 3, "q, k, v must be rank 3");
  const int64_t batch = q.shape(0), q_len = q.shape(1), width = q.shape(2);
  const int64_t kv_batch = k.shape(0), kv_len = k.shape(1);
  const int64_t kv_heads = kv_heads_argument.value_or(heads);
  require(heads >= 1 && width % heads == 0, "heads must divide the width");
  require(kv_heads >= 1 && heads % kv_heads == 0, "kv_heads must divide heads");
  const int64_t kv_width = kv_heads * (width / heads);
  require(k.shape(2) == kv_width && v.shape(0) == kv_batch && v.shape(1) == kv_len &&
              v.shape(2) == kv_width,
          "k and v must be [kv_batch, kv_len, kv_heads * head_dim]");
  require(!causal || q_len == kv_len, "causal attention needs q_len == kv_len");
  require(kv_lengths.size() == kv_batch, "kv_lengths must be [kv_batch]");
  for (int64_t b = 0; b < kv_batch; ++b) {
    require(kv_lengths.data()[b] >= 1 && kv_lengths.data()[b] <= kv_len, "kv_lengths must be in 1..kv_len");
  }
  if (kv_index) {
    require(kv_index->size() == batch, "kv_index must be [batch]");
    for (int64_t b = 0; b < batch; ++b) {
      require(kv_index->data()[b] >= 0 && kv_index->data()[b] < kv_batch, "kv_index out of range");
    }
  } else {
    require(kv_batch == batch, "without kv_index, k must have q's batch");
  }
  py::array_t<float> out({batch, q_len, width});
  py::array_t<float> weights({probabilities ? batch : 0, heads, q_len, kv_len});
  if (!on_gpu(backend)) {
    ref::attention(q.data(), k.data(), v.data(), batch, q_len, kv_len, heads, kv_heads, width / heads,
                   kv_index ? kv_index->data() : nullptr, kv_lengths.data(), causal, scale,
                   out.mutable_data(), probabilities ? weights.mutable_data() : nullptr);
  } else {
    DeviceBuffer<float> device_q = to_device(q), device_k = to_device(k), device_v = to_device(v);
    DeviceBuffer<int32_t> device_index = kv_index ? to_device(*kv_index) : DeviceBuffer<int32_t>();
    DeviceBuffer<int64_t> device_lengths = to_device(kv_lengths);
    DeviceBuffer<float> device_out(static_cast<size_t>(out.size())), device_weights(static_cast<size_t>(weights.size()));
    kc::attention(device_q.get(), device_k.get(), device_v.get(), batch, q_len, kv_len, heads, kv_heads,
                  width / heads, device_index.get(), device_lengths.get(), causal, scale, device_out.get(),
                  probabilities ? device_weights.get() : nullptr, nullptr);
    download(device_weights.get(), static_cast<size_t>(weights.size()), weights.mutable_data(), nullptr);
    finish_gpu(device_out, out);
  }
  if (!probabilities) return std::move(out);
  return py::make_tuple(out, weights);
}

// keys, values: [steps, rows, kv_width] (the chunk of step s is keys[s]) with
// kv_width = kv_heads * head_dim, kv_heads (default: heads) dividing heads; ancestry: [n, stride]
// int32 with stride >= steps.
py::array_t<float> cached_attention(const Floats& q, const Floats& keys, const Floats& values,
                                    const Int32s& ancestry, int64_t heads, float scale,
                                    std::optional<int64_t> kv_heads_argument,
                                    const std::string& backend) {
  require(q.ndim() == 2 && keys.ndim() == 3 && values.ndim() == 3 && ancestry.ndim() == 2,
          "q [n, width], keys/values [steps, rows, kv_width], ancestry [n, stride]");
  const int64_t n = q.shape(0), width = q.shape(1);
  const int64_t steps = keys.shape(0), rows = keys.shape(1), stride = ancestry.shape(1);
  const int64_t kv_heads = kv_heads_argument.value_or(heads);
  require(heads >= 1 && width % heads == 0, "heads must divide the width");
  require(kv_heads >= 1 && heads % kv_heads == 0, "kv_heads must divide heads");
  const int64_t kv_width = kv_heads * (width / heads);
  require(keys.shape(2) == kv_width && values.shape(0) == steps && values.shape(1) == rows &&
              values.shape(2) == kv_width,
          "keys and values must be [steps, rows, kv_heads * head_dim]");
  require(steps >= 1 && ancestry.shape(0) == n && stride >= steps, "ancestry must be [n, >= steps]");
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t s = 0; s < steps; ++s) {
      const int32_t row = ancestry.data()[i * stride + s];
      require(row >= 0 && row < rows, "ancestry rows must be < rows");
    }
  }
  py::array_t<float> out({n, width});
  const int64_t chunk = rows * kv_width;
  if (!on_gpu(backend)) {
    std::vector<const float*> step_keys, step_values;
    for (int64_t s = 0; s < steps; ++s) {
      step_keys.push_back(keys.data() + s * chunk);
      step_values.push_back(values.data() + s * chunk);
    }
    ref::cached_attention(q.data(), n, heads, kv_heads, width / heads, steps, step_keys.data(),
                          step_values.data(), ancestry.data(), stride, scale, out.mutable_data());
    return out;
  }
  DeviceBuffer<float> device_q = to_device(q), device_keys = to_device(keys), device_values = to_device(values);
  DeviceBuffer<int32_t> device_ancestry = to_device(ancestry);
  std::vector<const float*> pointers;  // [2][steps]: keys, then values
  for (int64_t s = 0; s < steps; ++s) pointers.push_back(device_keys.get() + s * chunk);
  for (int64_t s = 0; s < steps; ++s) pointers.push_back(device_values.get() + s * chunk);
  DeviceBuffer<const float*> device_pointers = to_device(pointers.data(), pointers.size());
  DeviceBuffer<float> device_out(static_cast<size_t>(n * width));
  kc::cached_attention(device_q.get(), n, heads, kv_heads, width / heads, steps, device_pointers.get(),
                       device_pointers.get() + steps, device_ancestry.get(), stride, scale, device_out.get(),
                       nullptr);
  finish_gpu(device_out, out);
  return out;
}

}  // namespace

void bind_ops(py::module_& m) {
  py::module_ ops = m.def_submodule(
      "ops", "Each CUDA kernel (backend='cuda', on GPU 0) and its scalar reference "
             "(backend='reference') on NumPy arrays, for tests.");
  ops.def("linear", &linear, py::arg("x"), py::arg("weight"), py::arg("dtype") = "f32",
          py::arg("row_scales") = py::none(), py::arg("bias") = py::none(),
          py::arg("activation") = py::none(), py::kw_only(), py::arg("backend"),
          "y = act(x W^T + bias); backend 'cuda' (exact kernel), 'cublas' or 'reference'. int8 "
          "weights quantise x per row (kernels/ref/linear_int8.h) on every backend.");
  ops.def("layer_norm", &layer_norm, py::arg("x"), py::arg("residual"), py::arg("gamma"),
          py::arg("beta"), py::arg("epsilon"), py::kw_only(), py::arg("backend"));
  ops.def("rms_norm", &rms_norm, py::arg("x"), py::arg("gamma"), py::arg("epsilon"),
          py::kw_only(), py::arg("backend"));
  ops.def("gated_activation", &gated_activation, py::arg("kind"), py::arg("x"), py::kw_only(),
          py::arg("backend"));
  ops.def("rotary", &rotary, py::arg("x"), py::arg("heads"), py::arg("rotary_dim"),
          py::arg("positions"), py::arg("base"), py::arg("table_positions"),
          py::arg("interleaved"), py::kw_only(), py::arg("backend"));
  ops.def("softmax", &softmax, py::arg("x"), py::kw_only(), py::arg("backend"));
  ops.def("activation", &activation, py::arg("kind"), py::arg("x"), py::kw_only(), py::arg("backend"));
  ops.def("add", &add, py::arg("x"), py::arg("y"), py::kw_only(), py::arg("backend"));
  ops.def("embedding", &embedding, py::arg("ids"), py::arg("positions"), py::arg("table"),
          py::arg("dtype"), py::arg("row_scales"), py::arg("scale"), py::arg("position_table"),
          py::kw_only(), py::arg("backend"));
  ops.def("attention", &attention, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("heads"),
          py::arg("kv_index"), py::arg("kv_lengths"), py::arg("scale"),
          py::arg("probabilities") = false, py::kw_only(), py::arg("kv_heads") = py::none(),
          py::arg("causal") = false, py::arg("backend"),
          "Grouped-query when kv_heads (default: heads) < heads; causal needs q_len == kv_len.");
  ops.def("cached_attention", &cached_attention, py::arg("q"), py::arg("keys"), py::arg("values"),
          py::arg("ancestry"), py::arg("heads"), py::arg("scale"), py::kw_only(),
          py::arg("kv_heads") = py::none(), py::arg("backend"),
          "Grouped-query when kv_heads (default: heads) < heads.");
}

}  // namespace pytransformer::python::cuda
