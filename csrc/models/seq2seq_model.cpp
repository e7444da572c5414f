#include "models/seq2seq_model.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "format/tensor_names.h"
#include "layers/decoder_layer.h"
#include "layers/embeddings.h"
#include "layers/encoder_layer.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/scratch.h"
#include "models/ancestry.h"
#include "models/argument_checks.h"
#include "models/self_attention_cache.h"
#include "ops/cpu_device.h"
#include "ops/device_checks.h"
#include "pytransformer/error.h"
#include "tensor/dump.h"
#include "tensor/tensor.h"

namespace pytransformer::models {
namespace {

[[noreturn]] void invalid(const std::string& message) { throw InvalidArgument(message); }

// The cache of one decoding loop (design in seq2seq_model.h). Sized in start_decoding(), apart
// from the self-attention blocks past the first, which decode_step() allocates as steps reach
// them (SelfAttentionCache::reserve_through; never on the CPU: its one block holds every step).
struct DecoderCache {
  int64_t batch = 0;
  int64_t source_length = 0;
  std::vector<int64_t> lengths;            // [batch]
  std::vector<tensor::Tensor> cross_keys;  // per decoder layer: [batch, source_length, d]
  std::vector<tensor::Tensor> cross_values;
  int64_t max_hypotheses = 0;
  int64_t max_steps = 0;
  int64_t step = 0;               // the next step to run
  int64_t previous_count = 0;     // hypotheses of the last step run
  std::optional<SelfAttentionCache> self_attention;  // rows of d floats; SSRU models: none
  // SSRU models: per decoder layer, the cells of the last step run and of the next, [n, d]
  // each (swapped after every step).
  std::vector<tensor::Tensor> cells, next_cells;
  // ancestry[h * max_steps + s]: row in chunk s of hypothesis h's ancestor (h itself at the
  // last step). next_ancestry is the buffer the next step's table is built in.
  std::vector<int32_t> ancestry;
  std::vector<int32_t> next_ancestry;
  // Buffers of one step, reused by the next.
  std::vector<int64_t> positions;  // [max_hypotheses]
  tensor::Tensor hidden;           // [n, d]
  layers::LayerScratch scratch;
  tensor::Tensor logits;           // [n, vocab] where the device's memory is not the host's
  std::vector<tensor::Tensor> cross_probabilities;  // per decoder layer, when recorded
  std::vector<float> host_probabilities;            // one layer's, copied from a device
  // restrict_output(): the output layer of the allowed ids (ascending) and its logits [n, ids].
  std::unique_ptr<layers::Linear> restricted_output;
  std::vector<int32_t> output_ids;
  std::vector<float> restricted_logits;
};

struct Seq2SeqDecoderState final : DecoderState {
  std::shared_ptr<const ops::Device> device;  // outlives the cache's tensors
  const void* owner = nullptr;                // the Seq2SeqModel::Impl that made it
  DecoderCache cache;
  int64_t step() const override { return cache.step; }
};

// The host copy of a device tensor, or the tensor itself where the host can read it.
const float* on_host(const tensor::Tensor& value, std::vector<float>& staging) {
  if (value.allocator().host_accessible()) return value.data();
  staging.resize(static_cast<size_t>(value.numel()));
  value.allocator().copy_to_host(value.data(), sizeof(float) * staging.size(), staging.data());
  return staging.data();
}

}  // namespace

struct Seq2SeqModel::Impl {
  std::shared_ptr<const format::ModelFile> file;
  const format::ModelConfig& config;
  std::shared_ptr<const ops::Device> device_holder;
  const ops::Device& device;
  layers::Embeddings encoder_embeddings;
  layers::Embeddings decoder_embeddings;
  std::vector<layers::EncoderLayer> encoder_layers;
  std::vector<layers::DecoderLayer> decoder_layers;
  std::optional<layers::LayerNorm> encoder_final_norm;
  std::optional<layers::LayerNorm> decoder_final_norm;
  layers::Linear output_projection;

  Impl(std::shared_ptr<const format::ModelFile> model_file,
       std::shared_ptr<const ops::Device> model_device)
      : file(std::move(model_file)),
        config(file->config()),
        device_holder(std::move(model_device)),
        device(*device_holder),
        encoder_embeddings(*file, format::Stack::ENCODER, device),
        decoder_embeddings(*file, format::Stack::DECODER, device),
        output_projection(*file, format::stack_scope(format::Stack::DECODER), "out_proj",
                          config.output_bias, device) {
    for (int64_t i = 0; i < config.encoder_layers; ++i) encoder_layers.emplace_back(*file, i, device);
    for (int64_t i = 0; i < config.decoder_layers; ++i) decoder_layers.emplace_back(*file, i, device);
    if (config.pre_norm) {
      encoder_final_norm.emplace(*file, format::stack_scope(format::Stack::ENCODER), "final_norm",
                                 device);
      decoder_final_norm.emplace(*file, format::stack_scope(format::Stack::DECODER), "final_norm",
                                 device);
    }
  }
};

namespace {

std::shared_ptr<const format::ModelFile> checked_file(std::shared_ptr<const format::ModelFile> file) {
  if (!file) invalid("Seq2SeqModel: no model file");
  if (file->tensor_data() != format::TensorData::LOAD) {
    invalid("Seq2SeqModel: " + file->path() +
            " was opened without its tensors (not TensorData::LOAD)");
  }
  if (file->config().decoder_only()) {
    throw FormatError(file->path() + ": a decoder-only language model (general.architecture " +
                      "llama), not a translation model");
  }
  if (file->config().d_model % 2 != 0) {
    throw FormatError(file->path() + ": model.d_model must be even (sinusoidal positions)");
  }
  return file;
}

}  // namespace

Seq2SeqModel::Seq2SeqModel(std::shared_ptr<const format::ModelFile> file,
                           std::shared_ptr<const ops::Device> device) {
  if (!device) invalid("Seq2SeqModel: no device");
  std::shared_ptr<const format::ModelFile> checked = checked_file(std::move(file));
  const auto call = device->begin_call();
  impl_ = std::make_unique<Impl>(std::move(checked), std::move(device));
}

Seq2SeqModel::Seq2SeqModel(std::shared_ptr<const format::ModelFile> file, int threads)
    : Seq2SeqModel(std::move(file), std::make_shared<ops::CpuDevice>(threads)) {}

Seq2SeqModel::~Seq2SeqModel() = default;

const format::ModelConfig& Seq2SeqModel::config() const { return impl_->config; }
const format::ModelFile& Seq2SeqModel::file() const { return *impl_->file; }
const ops::Device& Seq2SeqModel::device() const { return impl_->device; }

EncoderOutput Seq2SeqModel::encode(const std::vector<std::vector<int32_t>>& source_ids) const {
  const format::ModelConfig& config = impl_->config;
  const ops::Device& device = impl_->device;
  const int64_t d = config.d_model;
  check_source_ids(config, source_ids);
  EncoderOutput output;
  output.hidden = tensor::Tensor(device.allocator());
  output.batch = static_cast<int64_t>(source_ids.size());
  for (const std::vector<int32_t>& ids : source_ids) {
    output.lengths.push_back(static_cast<int64_t>(ids.size()));
    output.max_length = std::max(output.max_length, output.lengths.back());
  }
  if (output.batch == 0) return output;
  ops::check_attention_keys(device, d / config.encoder_heads, output.max_length, "source length");

  const int64_t batch = output.batch, max_length = output.max_length;
  // Padding positions embed id 0 and are zeroed at the end; attention never reads them.
  std::vector<int32_t> ids(static_cast<size_t>(batch * max_length), 0);
  std::vector<int64_t> positions(ids.size());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < max_length; ++t) {
      if (t < output.lengths[b]) ids[b * max_length + t] = source_ids[b][t];
      positions[b * max_length + t] = t;
    }
  }
  const auto call = device.begin_call();
  tensor::Tensor& x = output.hidden;
  impl_->encoder_embeddings.forward(ids.data(), positions.data(), batch * max_length, x, device);
  x.reshape({batch, max_length, d});
  tensor::dump("encoder.embeddings", x);
  {
    layers::LayerScratch scratch;  // freed before the call returns
    for (size_t i = 0; i < impl_->encoder_layers.size(); ++i) {
      impl_->encoder_layers[i].forward(x, output.lengths.data(), scratch, device);
      tensor::dump("encoder.layer" + std::to_string(i), x);
    }
  }
  if (impl_->encoder_final_norm) impl_->encoder_final_norm->forward(x, nullptr, x, device);
  for (int64_t b = 0; b < batch; ++b) {
    device.zero(x.data() + (b * max_length + output.lengths[b]) * d,
                (max_length - output.lengths[b]) * d);
  }
  tensor::dump("encoder.output", x);
  return output;
}

std::unique_ptr<DecoderState> Seq2SeqModel::start_decoding(const EncoderOutput& encoded,
                                                           int64_t max_hypotheses,
                                                           int64_t max_steps) const {
  const format::ModelConfig& config = impl_->config;
  const ops::Device& device = impl_->device;
  const int64_t d = config.d_model;
  check_decoding_start(config, encoded, max_hypotheses, max_steps);
  if (&encoded.hidden.allocator() != &device.allocator()) {
    invalid("start_decoding: the encoder output is not in the memory of this model's device (" +
            device.name() + ")");
  }
  const int64_t head_dim = d / config.decoder_heads;
  ops::check_attention_keys(device, head_dim, max_steps, "max_steps");
  ops::check_attention_keys(device, head_dim, encoded.max_length, "source length");
  const auto call = device.begin_call();
  auto decoder_state = std::make_unique<Seq2SeqDecoderState>();
  decoder_state->device = impl_->device_holder;
  decoder_state->owner = impl_.get();
  DecoderCache* state = &decoder_state->cache;
  state->batch = encoded.batch;
  state->source_length = encoded.max_length;
  state->lengths = encoded.lengths;
  state->max_hypotheses = max_hypotheses;
  state->max_steps = max_steps;
  const size_t layers = impl_->decoder_layers.size();
  state->cross_keys.resize(layers);
  state->cross_values.resize(layers);
  for (size_t l = 0; l < layers; ++l) {
    impl_->decoder_layers[l].cross_attention().project_memory(encoded.hidden, state->cross_keys[l],
                                                              state->cross_values[l], device);
  }
  if (config.decoder_autoregression == format::DecoderAutoregression::SSRU) {
    for (size_t l = 0; l < layers; ++l) {
      state->cells.emplace_back(device.allocator());
      state->next_cells.emplace_back(device.allocator());
    }
  } else {
    state->self_attention.emplace(static_cast<int64_t>(layers), max_hypotheses, max_steps, d,
                                  device);
  }
  state->ancestry.assign(static_cast<size_t>(max_hypotheses * max_steps), 0);
  state->next_ancestry.assign(state->ancestry.size(), 0);
  state->positions.resize(static_cast<size_t>(max_hypotheses));
  state->hidden = tensor::Tensor(device.allocator());
  state->logits = tensor::Tensor(device.allocator());
  state->cross_probabilities.resize(layers);
  return decoder_state;
}

bool Seq2SeqModel::restrict_output(DecoderState& decoder_state,
                                   const std::vector<int32_t>& ids) const {
  auto* own_state = dynamic_cast<Seq2SeqDecoderState*>(&decoder_state);
  if (!own_state || own_state->owner != impl_.get()) {
    invalid("restrict_output: the state was not made by this model's start_decoding()");
  }
  const int64_t vocab = impl_->output_projection.out_features();
  for (size_t c = 0; c < ids.size(); ++c) {
    if (ids[c] < 0 || ids[c] >= vocab || (c > 0 && ids[c] <= ids[c - 1])) {
      invalid("restrict_output: the ids must be ascending, unique and below the target "
              "vocabulary size " + std::to_string(vocab));
    }
  }
  const auto call = impl_->device.begin_call();
  std::unique_ptr<layers::Linear> selected =
      impl_->output_projection.select_rows(ids, impl_->device);
  if (!selected) return false;
  DecoderCache& state = own_state->cache;
  state.restricted_output = std::move(selected);
  state.output_ids = ids;
  return true;
}

void Seq2SeqModel::decode_step(DecoderState& decoder_state, const int32_t* tokens, const int32_t* sentence,
                               const int32_t* parent, int64_t n, float* logits,
                               CrossAttentionRecord* attention) const {
  const format::ModelConfig& config = impl_->config;
  const ops::Device& device = impl_->device;
  auto* own_state = dynamic_cast<Seq2SeqDecoderState*>(&decoder_state);
  if (!own_state || own_state->owner != impl_.get()) {
    invalid("decode_step: the state was not made by this model's start_decoding()");
  }
  DecoderCache& state = own_state->cache;
  const int64_t t = state.step;
  check_step(config, {t, state.max_steps, state.max_hypotheses, state.batch, state.previous_count},
             tokens, sentence, parent, n, logits);

  const auto call = device.begin_call();
  if (state.self_attention) state.self_attention->reserve_through(t, device.allocator());
  // Ancestry: hypothesis h inherits its parent's rows and owns row h of this step's chunk.
  const int64_t stride = state.max_steps;
  extend_ancestry(state.ancestry, parent, n, t, stride, state.next_ancestry);
  // Only now (all arguments valid, the cache block allocated) does the state change.
  state.ancestry.swap(state.next_ancestry);
  state.step = t + 1;
  state.previous_count = n;

  // Step names are built only when dumping: a string per step would be a heap allocation.
  const bool dumping = tensor::dump_enabled();
  const auto dump_step = [&](const std::string& what, const tensor::Tensor& value) {
    tensor::dump("decoder.step" + std::to_string(t) + "." + what, value);
  };
  const size_t layers = impl_->decoder_layers.size();
  std::fill(state.positions.begin(), state.positions.begin() + n, t);
  tensor::Tensor& x = state.hidden;
  impl_->decoder_embeddings.forward(tokens, state.positions.data(), n, x, device);
  if (dumping) dump_step("embeddings", x);
  for (size_t l = 0; l < layers; ++l) {
    layers::StepCache cache;
    layers::RecurrentCells cells;
    if (state.self_attention) {
      cache = state.self_attention->view(l, t + 1, state.ancestry.data(), stride);
    } else {
      cells.previous = t > 0 ? &state.cells[l] : nullptr;
      cells.parent = parent;
      cells.cells = &state.next_cells[l];
    }
    layers::CrossMemory memory;
    memory.keys = &state.cross_keys[l];
    memory.values = &state.cross_values[l];
    memory.lengths = state.lengths.data();
    memory.sentence = sentence;
    impl_->decoder_layers[l].step(x, cache, cells, memory,
                                  attention ? &state.cross_probabilities[l] : nullptr,
                                  state.scratch, device);
    if (dumping) dump_step("layer" + std::to_string(l), x);
  }
  state.cells.swap(state.next_cells);  // this step's cells are the next one's previous
  if (impl_->decoder_final_norm) impl_->decoder_final_norm->forward(x, nullptr, x, device);
  const int64_t vocab = impl_->output_projection.out_features();
  if (state.restricted_output) {
    // Only the allowed ids' logits are computed; every other id gets -infinity.
    const int64_t count = static_cast<int64_t>(state.output_ids.size());
    state.restricted_logits.resize(static_cast<size_t>(n * count));
    state.restricted_output->forward(x, state.restricted_logits.data(), device);
    std::fill(logits, logits + n * vocab, -std::numeric_limits<float>::infinity());
    for (int64_t i = 0; i < n; ++i) {
      const float* restricted = state.restricted_logits.data() + i * count;
      float* row = logits + i * vocab;
      for (int64_t c = 0; c < count; ++c) row[state.output_ids[c]] = restricted[c];
    }
  } else {
    impl_->output_projection.forward_to_host(x, logits, state.logits, device);
  }
  if (dumping) {
    tensor::Tensor scores;
    scores.resize({n, vocab});
    std::memcpy(scores.data(), logits, sizeof(float) * scores.numel());
    dump_step("logits", scores);
  }

  if (attention) {
    // [n, heads, 1, S] per layer -> [layers, heads, n, S].
    const int64_t heads = config.decoder_heads, source = state.source_length;
    attention->probabilities.resize(layers * static_cast<size_t>(heads * n * source));
    float* out = attention->probabilities.data();
    for (size_t l = 0; l < layers; ++l) {
      const float* layer_probabilities = on_host(state.cross_probabilities[l], state.host_probabilities);
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t i = 0; i < n; ++i) {
          std::memcpy(out, layer_probabilities + (i * heads + h) * source, sizeof(float) * source);
          out += source;
        }
      }
    }
  }
}

}  // namespace pytransformer::models
