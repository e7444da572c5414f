#include "cuda/cuda_model.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "cuda/device_buffer.h"
#include "format/tensor_names.h"
#include "kernels/cuda/add.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/layer_norm.h"
#include "kernels/cuda/linear.h"
#include "kernels/ref/embedding.h"
#include "models/ancestry.h"
#include "models/argument_checks.h"
#include "pytransformer/error.h"
#include "tensor/weight_matrix.h"
#ifdef PYTRANSFORMER_CUBLAS
#include "kernels/cuda/linear_cublas.h"
#endif

namespace pytransformer::cuda {

namespace kc = kernels::cuda;

namespace {

[[noreturn]] void invalid(const std::string& message) { throw InvalidArgument(message); }

// The self-attention cache grows by blocks of this many steps.
constexpr int64_t kStepsPerBlock = 16;

// Makes `device` the calling thread's current device for the duration of a call.
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

struct Linear {
  kc::DeviceWeight weight;
  const float* bias = nullptr;  // [rows] or nullptr
};

struct Norm {
  const float* gamma = nullptr;
  const float* beta = nullptr;
};

struct Attention {
  Linear q, k, v, out;
  int64_t heads = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;
};

struct FeedForward {
  Linear up, down;
};

struct EncoderLayer {
  Attention self_attention;
  Norm self_attention_norm;
  FeedForward feed_forward;
  Norm feed_forward_norm;
};

struct DecoderLayer {
  Attention self_attention;
  Norm self_attention_norm;
  Attention cross_attention;
  Norm cross_attention_norm;
  FeedForward feed_forward;
  Norm feed_forward_norm;
};

struct Embeddings {
  kc::DeviceWeight table;
  float scale = 1.0f;
  DeviceBuffer<float> positions;  // [max_positions, d]: the reference's sinusoidal table
  std::optional<Norm> norm;
};

// Activations of one forward pass over up to `rows` rows.
struct Workspace {
  DeviceBuffer<float> x, normed, q, k, v, context, sublayer;  // [rows, d]
  DeviceBuffer<float> hidden;                                 // [rows, ffn]
  Workspace() = default;
  Workspace(int64_t rows, int64_t d, int64_t ffn)
      : x(rows * d), normed(rows * d), q(rows * d), k(rows * d), v(rows * d), context(rows * d),
        sublayer(rows * d), hidden(rows * ffn) {}
};

std::shared_ptr<const format::ModelFile> checked_file(std::shared_ptr<const format::ModelFile> file,
                                                      int device) {
  if (!file) invalid("CudaModel: no model file");
  if (file->config().d_model % 2 != 0) {
    throw FormatError(file->path() + ": model.d_model must be even (sinusoidal positions)");
  }
  const std::string problem = kc::device_problem(device);
  if (!problem.empty()) throw CudaUnavailable("CUDA requested but " + problem);
  return file;
}

// The cache and workspaces of one decoding loop (design in cuda_model.h).
struct CudaDecoderState final : models::DecoderState {
  const void* owner = nullptr;  // the CudaModel::Impl that made it
  int64_t batch = 0;
  int64_t source_length = 0;
  DeviceBuffer<int64_t> lengths;  // [batch]
  DeviceBuffer<float> cross;      // [layers][2][batch, source_length, d]: keys, then values
  int64_t max_hypotheses = 0;
  int64_t max_steps = 0;
  int64_t next_step = 0;
  int64_t previous_count = 0;
  std::vector<DeviceBuffer<float>> cache_blocks;  // [layers][2][kStepsPerBlock][max_hypotheses][d]
  std::vector<const float*> step_pointers;        // [layers][2][max_steps]: chunk base per step
  DeviceBuffer<const float*> device_step_pointers;
  std::vector<int32_t> ancestry;  // [max_hypotheses, max_steps] as in Seq2SeqModel
  std::vector<int32_t> next_ancestry;
  DeviceBuffer<int32_t> device_ancestry;
  DeviceBuffer<int32_t> tokens, sentence;  // [max_hypotheses]
  DeviceBuffer<int64_t> positions;         // [max_hypotheses]
  std::vector<int64_t> host_positions;     // [max_hypotheses]: staged for upload
  Workspace workspace;                     // rows: max_hypotheses
  DeviceBuffer<float> logits;              // [max_hypotheses, target_vocab]
  DeviceBuffer<float> probabilities;       // [layers][max_hypotheses, heads, 1, source_length]

  int64_t step() const override { return next_step; }
};

}  // namespace

bool cublas_available() {
#ifdef PYTRANSFORMER_CUBLAS
  return true;
#else
  return false;
#endif
}

struct CudaModel::Impl {
  std::shared_ptr<const format::ModelFile> file;
  const format::ModelConfig& config;
  int device;
  GemmBackend gemm;
  // Uploaded tensors by (host address, bytes): tied weights are uploaded once.
  std::map<std::pair<const void*, size_t>, DeviceBuffer<unsigned char>> uploads;
  int64_t largest_converted_matrix = 0;  // elements of the largest f16/bf16 linear weight
  Embeddings encoder_embeddings, decoder_embeddings;
  std::vector<EncoderLayer> encoder_layers;
  std::vector<DecoderLayer> decoder_layers;
  std::optional<Norm> encoder_final_norm, decoder_final_norm;
  Linear output_projection;
  cudaStream_t stream = nullptr;
  std::mutex mutex;  // serialises all GPU work of the model
  // The int8 path's quantised activations, grown on demand (under `mutex`).
  mutable DeviceBuffer<int8_t> quantized_rows;
  mutable DeviceBuffer<float> quantized_scales;
#ifdef PYTRANSFORMER_CUBLAS
  std::unique_ptr<kc::CublasHandle> cublas;
  DeviceBuffer<float> conversion_workspace;  // the cuBLAS path's f32 copy of a weight
#endif

  Impl(std::shared_ptr<const format::ModelFile> model_file, int device_index, GemmBackend backend)
      : file(std::move(model_file)), config(file->config()), device(device_index), gemm(backend) {
    if (gemm == GemmBackend::CUBLAS && !cublas_available()) {
      invalid("gemm='cublas' is not available: this build of the CUDA backend has no cuBLAS");
    }
    DeviceGuard guard(device);
    kc::check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    try {
      load();
    } catch (...) {
      cudaStreamDestroy(stream);
      throw;
    }
  }

  ~Impl() {
    if (stream) cudaStreamDestroy(stream);
  }

  // -- loading ---------------------------------------------------------------------------------

  const void* upload_bytes(const void* host, size_t bytes) {
    auto found = uploads.find({host, bytes});
    if (found != uploads.end()) return found->second.get();
    DeviceBuffer<unsigned char> buffer(bytes);
    kc::check(cudaMemcpy(buffer.get(), host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
    const void* device_pointer = buffer.get();
    uploads.emplace(std::make_pair(host, bytes), std::move(buffer));
    return device_pointer;
  }

  const float* upload_vector(const float* host, int64_t size) {
    return static_cast<const float*>(upload_bytes(host, sizeof(float) * size));
  }

  kc::DeviceWeight upload_matrix(const tensor::WeightMatrix& matrix) {
    kc::DeviceWeight weight;
    weight.data = upload_bytes(matrix.data, dtype_size(matrix.dtype) * matrix.rows * matrix.cols);
    weight.dtype = matrix.dtype;
    weight.rows = matrix.rows;
    weight.cols = matrix.cols;
    if (matrix.dtype == DType::INT8) weight.row_scales = upload_vector(matrix.row_scales, matrix.rows);
    return weight;
  }

  Linear load_linear(const std::string& scope, const std::string& module, bool with_bias) {
    const tensor::WeightMatrix matrix =
        tensor::WeightMatrix::from_file(*file, format::tensor_name(scope, module, "weight"));
    Linear linear;
    linear.weight = upload_matrix(matrix);
    if (with_bias) {
      linear.bias = upload_vector(
          tensor::vector_from_file(*file, format::tensor_name(scope, module, "bias"), matrix.rows),
          matrix.rows);
    }
    if (matrix.dtype == DType::F16 || matrix.dtype == DType::BF16) {
      largest_converted_matrix = std::max(largest_converted_matrix, matrix.rows * matrix.cols);
    }
    return linear;
  }

  Norm load_norm(const std::string& scope, const std::string& module) {
    const int64_t d = config.d_model;
    Norm norm;
    norm.gamma = upload_vector(
        tensor::vector_from_file(*file, format::tensor_name(scope, module, "gamma"), d), d);
    norm.beta = upload_vector(
        tensor::vector_from_file(*file, format::tensor_name(scope, module, "beta"), d), d);
    return norm;
  }

  Attention load_attention(const std::string& scope, const std::string& prefix, int64_t heads) {
    Attention attention;
    attention.q = load_linear(scope, prefix + "_q", config.linear_bias);
    attention.k = load_linear(scope, prefix + "_k", config.linear_bias);
    attention.v = load_linear(scope, prefix + "_v", config.linear_bias);
    attention.out = load_linear(scope, prefix + "_out", config.linear_bias);
    attention.heads = heads;
    attention.head_dim = config.d_model / heads;
    // As layers::MultiHeadAttention computes it.
    attention.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(attention.head_dim)));
    return attention;
  }

  FeedForward load_feed_forward(const std::string& scope) {
    return FeedForward{load_linear(scope, "ffn_up", config.linear_bias),
                       load_linear(scope, "ffn_down", config.linear_bias)};
  }

  void load_embeddings(format::Stack stack, Embeddings& embeddings) {
    const std::string scope = format::stack_scope(stack);
    embeddings.table = upload_matrix(
        tensor::WeightMatrix::from_file(*file, format::tensor_name(scope, "embed", "weight")));
    if (config.scale_embedding) {
      embeddings.scale = static_cast<float>(std::sqrt(static_cast<double>(config.d_model)));
    }
    std::vector<float> table(static_cast<size_t>(config.max_positions * config.d_model));
    kernels::ref::sinusoidal_positions(config.position_offset, config.max_positions, config.d_model,
                                       config.position_layout, config.position_frequencies,
                                       table.data());
    embeddings.positions = DeviceBuffer<float>(table.size());
    kc::check(cudaMemcpy(embeddings.positions.get(), table.data(), sizeof(float) * table.size(),
                         cudaMemcpyHostToDevice),
              "cudaMemcpy (positions)");
    if (config.embedding_norm) embeddings.norm = load_norm(scope, "embed_norm");
  }

  void load() {
    load_embeddings(format::Stack::ENCODER, encoder_embeddings);
    load_embeddings(format::Stack::DECODER, decoder_embeddings);
    for (int64_t i = 0; i < config.encoder_layers; ++i) {
      const std::string scope = format::layer_scope(format::Stack::ENCODER, i);
      encoder_layers.push_back(EncoderLayer{
          load_attention(scope, "attn_self", config.encoder_heads), load_norm(scope, "attn_self_norm"),
          load_feed_forward(scope), load_norm(scope, "ffn_norm")});
    }
    for (int64_t i = 0; i < config.decoder_layers; ++i) {
      const std::string scope = format::layer_scope(format::Stack::DECODER, i);
      decoder_layers.push_back(DecoderLayer{
          load_attention(scope, "attn_self", config.decoder_heads), load_norm(scope, "attn_self_norm"),
          load_attention(scope, "attn_cross", config.decoder_heads),
          load_norm(scope, "attn_cross_norm"), load_feed_forward(scope),
          load_norm(scope, "ffn_norm")});
    }
    if (config.pre_norm) {
      encoder_final_norm = load_norm(format::stack_scope(format::Stack::ENCODER), "final_norm");
      decoder_final_norm = load_norm(format::stack_scope(format::Stack::DECODER), "final_norm");
    }
    output_projection =
        load_linear(format::stack_scope(format::Stack::DECODER), "out_proj", config.output_bias);
#ifdef PYTRANSFORMER_CUBLAS
    if (gemm == GemmBackend::CUBLAS) {
      cublas = std::make_unique<kc::CublasHandle>();
      conversion_workspace = DeviceBuffer<float>(static_cast<size_t>(largest_converted_matrix));
    }
#endif
  }

  // -- building blocks (queued on `stream`) ----------------------------------------------------

  void linear(const Linear& layer, const float* x, int64_t rows, float* y,
              const format::Activation* activation = nullptr) const {
    if (layer.weight.dtype == DType::INT8) {  // whatever the GEMM backend: the int8 reference
      const size_t values = static_cast<size_t>(rows * layer.weight.cols);
      if (quantized_rows.size() < values || quantized_scales.size() < static_cast<size_t>(rows)) {
        synchronize();  // queued kernels may still read the buffers being replaced
        quantized_rows = DeviceBuffer<int8_t>(std::max(values, quantized_rows.size()));
        quantized_scales =
            DeviceBuffer<float>(std::max(static_cast<size_t>(rows), quantized_scales.size()));
      }
      kc::linear_int8(x, rows, layer.weight, layer.bias, activation, quantized_rows.get(),
                      quantized_scales.get(), y, stream);
      return;
    }
#ifdef PYTRANSFORMER_CUBLAS
    if (gemm == GemmBackend::CUBLAS) {
      kc::linear_cublas(*cublas, x, rows, layer.weight, layer.bias, activation,
                        conversion_workspace.get(), y, stream);
      return;
    }
#endif
    kc::linear(x, rows, layer.weight, layer.bias, activation, y, stream);
  }

  // y = LN(x + residual); y may be x or residual.
  void layer_norm(const Norm& norm, const float* x, const float* residual, int64_t rows,
                  float* y) const {
    kc::layer_norm(x, residual, norm.gamma, norm.beta, rows, config.d_model,
                   config.layer_norm_epsilon, y, stream);
  }

  void add(const float* x, float* y, int64_t rows) const {
    kc::add(x, y, rows * config.d_model, stream);
  }

  void feed_forward(const FeedForward& layer, const float* x, int64_t rows, Workspace& w,
                    float* out) const {
    linear(layer.up, x, rows, w.hidden.get(), &config.activation);
    linear(layer.down, w.hidden.get(), rows, out);
  }

  void embed(const Embeddings& embeddings, const int32_t* ids, const int64_t* positions,
             int64_t count, float* out) const {
    kc::embedding(ids, positions, count, embeddings.table.data, embeddings.table.dtype,
                  embeddings.table.row_scales, config.d_model, embeddings.scale,
                  embeddings.positions.get(), out, stream);
    if (embeddings.norm) layer_norm(*embeddings.norm, out, nullptr, count, out);
  }

  // Encoder self-attention: x [batch, length, d], lengths [batch] (device).
  void self_attention(const Attention& layer, const float* x, int64_t batch, int64_t length,
                      const int64_t* lengths, Workspace& w, float* out) const {
    const int64_t rows = batch * length;
    linear(layer.q, x, rows, w.q.get());
    linear(layer.k, x, rows, w.k.get());
    linear(layer.v, x, rows, w.v.get());
    kc::attention(w.q.get(), w.k.get(), w.v.get(), batch, length, length, layer.heads,
                  layer.head_dim, nullptr, lengths, layer.scale, w.context.get(), nullptr, stream);
    linear(layer.out, w.context.get(), rows, out);
  }

  void encoder_layer(const EncoderLayer& layer, float* x, int64_t batch, int64_t length,
                     const int64_t* lengths, Workspace& w) const {
    const int64_t rows = batch * length;
    if (config.pre_norm) {
      layer_norm(layer.self_attention_norm, x, nullptr, rows, w.normed.get());
      self_attention(layer.self_attention, w.normed.get(), batch, length, lengths, w, w.sublayer.get());
      add(w.sublayer.get(), x, rows);
      layer_norm(layer.feed_forward_norm, x, nullptr, rows, w.normed.get());
      feed_forward(layer.feed_forward, w.normed.get(), rows, w, w.sublayer.get());
      add(w.sublayer.get(), x, rows);
    } else {
      self_attention(layer.self_attention, x, batch, length, lengths, w, w.sublayer.get());
      layer_norm(layer.self_attention_norm, x, w.sublayer.get(), rows, x);
      feed_forward(layer.feed_forward, x, rows, w, w.sublayer.get());
      layer_norm(layer.feed_forward_norm, x, w.sublayer.get(), rows, x);
    }
  }

  // Chunk base of step t for decoder layer l (kv 0: keys, 1: values).
  static float* chunk(CudaDecoderState& state, int64_t d, size_t l, int kv, int64_t t) {
    float* block = state.cache_blocks[static_cast<size_t>(t / kStepsPerBlock)].get();
    return block + ((static_cast<int64_t>(l) * 2 + kv) * kStepsPerBlock + t % kStepsPerBlock) *
                       state.max_hypotheses * d;
  }

  void cached_self_attention(const Attention& layer, size_t l, const float* x, int64_t n,
                             CudaDecoderState& state, Workspace& w, float* out) const {
    const int64_t t = state.next_step - 1;
    const float* const* pointers = state.device_step_pointers.get() + (l * 2) * state.max_steps;
    linear(layer.q, x, n, w.q.get());
    linear(layer.k, x, n, chunk(state, config.d_model, l, 0, t));
    linear(layer.v, x, n, chunk(state, config.d_model, l, 1, t));
    kc::cached_attention(w.q.get(), n, layer.heads, layer.head_dim, t + 1, pointers,
                         pointers + state.max_steps, state.device_ancestry.get(), state.max_steps,
                         layer.scale, w.context.get(), stream);
    linear(layer.out, w.context.get(), n, out);
  }

  void cross_attention(const Attention& layer, size_t l, const float* x, int64_t n,
                       CudaDecoderState& state, float* probabilities, Workspace& w,
                       float* out) const {
    const int64_t memory = state.batch * state.source_length * config.d_model;
    const float* keys = state.cross.get() + (l * 2) * memory;
    linear(layer.q, x, n, w.q.get());
    kc::attention(w.q.get(), keys, keys + memory, n, 1, state.source_length, layer.heads,
                  layer.head_dim, state.sentence.get(), state.lengths.get(), layer.scale,
                  w.context.get(), probabilities, stream);
    linear(layer.out, w.context.get(), n, out);
  }

  void decoder_layer(const DecoderLayer& layer, size_t l, float* x, int64_t n,
                     CudaDecoderState& state, float* probabilities, Workspace& w) const {
    if (config.pre_norm) {
      layer_norm(layer.self_attention_norm, x, nullptr, n, w.normed.get());
      cached_self_attention(layer.self_attention, l, w.normed.get(), n, state, w, w.sublayer.get());
      add(w.sublayer.get(), x, n);
      layer_norm(layer.cross_attention_norm, x, nullptr, n, w.normed.get());
      cross_attention(layer.cross_attention, l, w.normed.get(), n, state, probabilities, w,
                      w.sublayer.get());
      add(w.sublayer.get(), x, n);
      layer_norm(layer.feed_forward_norm, x, nullptr, n, w.normed.get());
      feed_forward(layer.feed_forward, w.normed.get(), n, w, w.sublayer.get());
      add(w.sublayer.get(), x, n);
    } else {
      cached_self_attention(layer.self_attention, l, x, n, state, w, w.sublayer.get());
      layer_norm(layer.self_attention_norm, x, w.sublayer.get(), n, x);
      cross_attention(layer.cross_attention, l, x, n, state, probabilities, w, w.sublayer.get());
      layer_norm(layer.cross_attention_norm, x, w.sublayer.get(), n, x);
      feed_forward(layer.feed_forward, x, n, w, w.sublayer.get());
      layer_norm(layer.feed_forward_norm, x, w.sublayer.get(), n, x);
    }
  }

  void synchronize() const { kc::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); }
};

CudaModel::CudaModel(std::shared_ptr<const format::ModelFile> file, int device, GemmBackend gemm) {
  std::shared_ptr<const format::ModelFile> checked = checked_file(std::move(file), device);
  impl_ = std::make_unique<Impl>(std::move(checked), device, gemm);
}

CudaModel::~CudaModel() = default;

const format::ModelConfig& CudaModel::config() const { return impl_->config; }
const format::ModelFile& CudaModel::file() const { return *impl_->file; }
int CudaModel::device() const { return impl_->device; }
GemmBackend CudaModel::gemm() const { return impl_->gemm; }

models::EncoderOutput CudaModel::encode(const std::vector<std::vector<int32_t>>& source_ids) const {
  const format::ModelConfig& config = impl_->config;
  const int64_t d = config.d_model;
  models::check_source_ids(config, source_ids);
  models::EncoderOutput output;
  output.batch = static_cast<int64_t>(source_ids.size());
  for (const std::vector<int32_t>& ids : source_ids) {
    output.lengths.push_back(static_cast<int64_t>(ids.size()));
    output.max_length = std::max(output.max_length, output.lengths.back());
  }
  if (output.batch == 0) return output;

  const int64_t batch = output.batch, max_length = output.max_length, rows = batch * max_length;
  // Padding positions embed id 0 and are zeroed at the end; attention never reads them.
  std::vector<int32_t> ids(static_cast<size_t>(rows), 0);
  std::vector<int64_t> positions(ids.size());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < max_length; ++t) {
      if (t < output.lengths[b]) ids[b * max_length + t] = source_ids[b][t];
      positions[b * max_length + t] = t;
    }
  }
  std::lock_guard<std::mutex> lock(impl_->mutex);
  DeviceGuard guard(impl_->device);
  cudaStream_t stream = impl_->stream;
  DeviceBuffer<int32_t> device_ids(ids.size());
  DeviceBuffer<int64_t> device_positions(positions.size()), device_lengths(output.lengths.size());
  upload(ids.data(), ids.size(), device_ids.get(), stream);
  upload(positions.data(), positions.size(), device_positions.get(), stream);
  upload(output.lengths.data(), output.lengths.size(), device_lengths.get(), stream);
  Workspace w(rows, d, config.encoder_ffn_dim);
  float* x = w.x.get();
  impl_->embed(impl_->encoder_embeddings, device_ids.get(), device_positions.get(), rows, x);
  for (const EncoderLayer& layer : impl_->encoder_layers) {
    impl_->encoder_layer(layer, x, batch, max_length, device_lengths.get(), w);
  }
  if (impl_->encoder_final_norm) impl_->layer_norm(*impl_->encoder_final_norm, x, nullptr, rows, x);
  output.hidden.resize(static_cast<size_t>(rows * d));
  download(x, output.hidden.size(), output.hidden.data(), stream);
  impl_->synchronize();
  for (int64_t b = 0; b < batch; ++b) {
    float* padding = output.hidden.data() + (b * max_length + output.lengths[b]) * d;
    std::fill(padding, padding + (max_length - output.lengths[b]) * d, 0.0f);
  }
  return output;
}

std::unique_ptr<models::DecoderState> CudaModel::start_decoding(
    const models::EncoderOutput& encoded, int64_t max_hypotheses, int64_t max_steps) const {
  const format::ModelConfig& config = impl_->config;
  const int64_t d = config.d_model;
  models::check_decoding_start(config, encoded, max_hypotheses, max_steps);
  const int64_t head_dim = d / config.decoder_heads;
  const int64_t attention_limit = kc::max_attention_keys(head_dim);
  if (max_steps > attention_limit || encoded.max_length > attention_limit) {
    invalid("start_decoding: the CUDA attention kernels attend over at most " +
            std::to_string(attention_limit) + " positions");
  }

  std::lock_guard<std::mutex> lock(impl_->mutex);
  DeviceGuard guard(impl_->device);
  cudaStream_t stream = impl_->stream;
  auto decoder_state = std::make_unique<CudaDecoderState>();
  CudaDecoderState& state = *decoder_state;
  const int64_t layers = static_cast<int64_t>(impl_->decoder_layers.size());
  const int64_t memory = encoded.batch * encoded.max_length * d;
  state.owner = impl_.get();
  state.batch = encoded.batch;
  state.source_length = encoded.max_length;
  state.lengths = DeviceBuffer<int64_t>(encoded.lengths.size());
  upload(encoded.lengths.data(), encoded.lengths.size(), state.lengths.get(), stream);
  state.cross = DeviceBuffer<float>(static_cast<size_t>(layers * 2 * memory));
  DeviceBuffer<float> hidden(static_cast<size_t>(memory));
  upload(encoded.hidden.data(), encoded.hidden.size(), hidden.get(), stream);
  for (int64_t l = 0; l < layers; ++l) {
    const Attention& cross = impl_->decoder_layers[l].cross_attention;
    float* keys = state.cross.get() + (l * 2) * memory;
    const int64_t rows = encoded.batch * encoded.max_length;
    impl_->linear(cross.k, hidden.get(), rows, keys);
    impl_->linear(cross.v, hidden.get(), rows, keys + memory);
  }
  state.max_hypotheses = max_hypotheses;
  state.max_steps = max_steps;
  state.step_pointers.assign(static_cast<size_t>(layers * 2 * max_steps), nullptr);
  state.device_step_pointers = DeviceBuffer<const float*>(state.step_pointers.size());
  state.ancestry.assign(static_cast<size_t>(max_hypotheses * max_steps), 0);
  state.next_ancestry.assign(state.ancestry.size(), 0);
  state.device_ancestry = DeviceBuffer<int32_t>(state.ancestry.size());
  state.tokens = DeviceBuffer<int32_t>(max_hypotheses);
  state.sentence = DeviceBuffer<int32_t>(max_hypotheses);
  state.positions = DeviceBuffer<int64_t>(max_hypotheses);
  state.host_positions.resize(static_cast<size_t>(max_hypotheses));
  // Device blocks are allocated as steps need them (device memory is committed at once), but
  // the host list of them never grows past this.
  state.cache_blocks.reserve(static_cast<size_t>((max_steps + kStepsPerBlock - 1) / kStepsPerBlock));
  state.workspace = Workspace(max_hypotheses, d, config.decoder_ffn_dim);
  state.logits = DeviceBuffer<float>(static_cast<size_t>(max_hypotheses * config.target_vocab_size));
  state.probabilities = DeviceBuffer<float>(
      static_cast<size_t>(layers * max_hypotheses * config.decoder_heads * encoded.max_length));
  impl_->synchronize();  // `hidden` is freed on return
  return decoder_state;
}

void CudaModel::decode_step(models::DecoderState& decoder_state, const int32_t* tokens,
                            const int32_t* sentence, const int32_t* parent, int64_t n,
                            float* logits, models::CrossAttentionRecord* attention) const {
  const format::ModelConfig& config = impl_->config;
  const int64_t d = config.d_model;
  auto* own_state = dynamic_cast<CudaDecoderState*>(&decoder_state);
  if (!own_state || own_state->owner != impl_.get()) {
    invalid("decode_step: the state was not made by this model's start_decoding()");
  }
  CudaDecoderState& state = *own_state;
  const int64_t t = state.next_step;
  models::check_step(config,
                     {t, state.max_steps, state.max_hypotheses, state.batch, state.previous_count},
                     tokens, sentence, parent, n, logits);

  std::lock_guard<std::mutex> lock(impl_->mutex);
  DeviceGuard guard(impl_->device);
  cudaStream_t stream = impl_->stream;
  const size_t layers = impl_->decoder_layers.size();
  if (t % kStepsPerBlock == 0) {
    state.cache_blocks.emplace_back(
        static_cast<size_t>(layers * 2 * kStepsPerBlock * state.max_hypotheses * d));
  }
  // Ancestry: hypothesis h inherits its parent's rows and owns row h of this step's chunk.
  const int64_t stride = state.max_steps;
  models::extend_ancestry(state.ancestry, parent, n, t, stride, state.next_ancestry);
  // Only now (all arguments valid, the cache block allocated) does the state change.
  state.ancestry.swap(state.next_ancestry);
  for (size_t l = 0; l < layers; ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      state.step_pointers[(l * 2 + kv) * stride + t] = Impl::chunk(state, d, l, kv, t);
    }
  }
  state.next_step = t + 1;
  state.previous_count = n;

  std::fill(state.host_positions.begin(), state.host_positions.begin() + n, t);
  upload(state.step_pointers.data(), state.step_pointers.size(), state.device_step_pointers.get(),
         stream);
  upload(state.ancestry.data(), static_cast<size_t>(n * stride), state.device_ancestry.get(), stream);
  upload(tokens, static_cast<size_t>(n), state.tokens.get(), stream);
  upload(sentence, static_cast<size_t>(n), state.sentence.get(), stream);
  upload(state.host_positions.data(), static_cast<size_t>(n), state.positions.get(), stream);

  Workspace& w = state.workspace;
  float* x = w.x.get();
  const int64_t heads = config.decoder_heads, source = state.source_length;
  const int64_t layer_probabilities = n * heads * source;
  impl_->embed(impl_->decoder_embeddings, state.tokens.get(), state.positions.get(), n, x);
  for (size_t l = 0; l < layers; ++l) {
    float* probabilities = attention ? state.probabilities.get() + l * layer_probabilities : nullptr;
    impl_->decoder_layer(impl_->decoder_layers[l], l, x, n, state, probabilities, w);
  }
  if (impl_->decoder_final_norm) impl_->layer_norm(*impl_->decoder_final_norm, x, nullptr, n, x);
  impl_->linear(impl_->output_projection, x, n, state.logits.get());
  download(state.logits.get(), static_cast<size_t>(n * config.target_vocab_size), logits, stream);
  std::vector<float> probabilities;
  if (attention) {
    probabilities.resize(static_cast<size_t>(layers * layer_probabilities));
    download(state.probabilities.get(), probabilities.size(), probabilities.data(), stream);
  }
  impl_->synchronize();

  if (attention) {
    // [n, heads, 1, S] per layer -> [layers, heads, n, S], as Seq2SeqModel.
    attention->probabilities.resize(probabilities.size());
    float* out = attention->probabilities.data();
    for (size_t l = 0; l < layers; ++l) {
      const float* layer = probabilities.data() + l * layer_probabilities;
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t i = 0; i < n; ++i) {
          std::memcpy(out, layer + (i * heads + h) * source, sizeof(float) * source);
          out += source;
        }
      }
    }
  }
}

}  // namespace pytransformer::cuda
