#include "models/llama_model.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "format/tensor_names.h"
#include "kernels/ref/rotary.h"
#include "layers/embeddings.h"
#include "layers/linear.h"
#include "layers/llama_layer.h"
#include "layers/scratch.h"
#include "models/ancestry.h"
#include "models/argument_checks.h"
#include "models/self_attention_cache.h"
#include "ops/cpu_device.h"
#include "ops/device_checks.h"
#include "ops/rms_norm.h"
#include "pytransformer/error.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::models {
namespace {

[[noreturn]] void invalid(const std::string& message) { throw InvalidArgument(message); }

struct LlamaDecoderState final : DecoderState {
  std::shared_ptr<const ops::Device> device;  // outlives the cache's tensors
  const void* owner = nullptr;                // the LlamaModel::Impl that made it
  int64_t batch = 0;
  int64_t prompt_steps = 0;   // cached prompt tokens (each sentence's prompt but its last)
  int64_t max_steps = 0;      // decode_step() calls allowed
  int64_t steps_run = 0;      // decode_step() calls made
  int64_t previous_count = 0;
  std::optional<SelfAttentionCache> cache;  // prompt_steps + max_steps steps
  // ancestry[h * stride + s], stride = prompt_steps + max_steps: cache row of hypothesis h's
  // ancestor at step s (its sentence's row for the prompt's steps).
  std::vector<int32_t> ancestry, next_ancestry;
  std::vector<int32_t> positions;     // [max_hypotheses]
  std::vector<int64_t> zero_positions;  // [max_hypotheses]: embeddings add no position
  tensor::Tensor hidden;
  layers::LayerScratch scratch;
  tensor::Tensor logits;  // where the device's memory is not the host's
  int64_t step() const override { return steps_run; }
};

kernels::ref::RotaryLayout kernel_layout(format::RotaryLayout layout) {
  return layout == format::RotaryLayout::HALF_SPLIT ? kernels::ref::RotaryLayout::HALF_SPLIT
                                                    : kernels::ref::RotaryLayout::INTERLEAVED;
}

std::shared_ptr<const format::ModelFile> checked_file(std::shared_ptr<const format::ModelFile> file) {
  if (!file) invalid("LlamaModel: no model file");
  if (file->tensor_data() != format::TensorData::LOAD) {
    invalid("LlamaModel: " + file->path() + " was opened without its tensors (not TensorData::LOAD)");
  }
  if (!file->config().decoder_only()) {
    throw FormatError(file->path() + ": general.architecture is transformer-seq2seq, not a "
                      "decoder-only language model");
  }
  return file;
}

}  // namespace

struct LlamaModel::Impl {
  std::shared_ptr<const format::ModelFile> file;
  const format::ModelConfig& config;
  std::shared_ptr<const ops::Device> device_holder;
  const ops::Device& device;
  layers::Embeddings embeddings;
  std::vector<layers::LlamaLayer> layers;
  const float* final_norm;  // [d], device memory
  layers::Linear output_projection;
  layers::RotaryTables rotary;

  Impl(std::shared_ptr<const format::ModelFile> model_file,
       std::shared_ptr<const ops::Device> model_device)
      : file(std::move(model_file)),
        config(file->config()),
        device_holder(std::move(model_device)),
        device(*device_holder),
        embeddings(*file, format::Stack::DECODER, device),
        final_norm(static_cast<const float*>(device.weight(
            tensor::vector_from_file(*file, format::tensor_name("dec", "final_norm", "gamma"),
                                     config.d_model),
            sizeof(float) * static_cast<size_t>(config.d_model)))),
        output_projection(*file, format::stack_scope(format::Stack::DECODER), "out_proj", false,
                          device) {
    for (int64_t i = 0; i < config.decoder_layers; ++i) layers.emplace_back(*file, i, device);
    const int64_t pairs = config.rotary_dim / 2;
    tensor::Tensor cos({config.max_positions, pairs}), sin({config.max_positions, pairs});
    kernels::ref::rotary_tables(config.rope_base, config.rotary_dim, config.max_positions,
                                cos.data(), sin.data());
    rotary.rotary_dim = config.rotary_dim;
    rotary.layout = kernel_layout(config.rotary_layout);
    for (auto [host, table] : {std::pair{&cos, &rotary.cos}, std::pair{&sin, &rotary.sin}}) {
      *table = tensor::Tensor(device.allocator());
      table->resize(host->shape());
      device.allocator().copy_from_host(host->data(), sizeof(float) * static_cast<size_t>(host->numel()),
                                        table->data());
    }
  }

  int64_t kv_width() const { return config.kv_heads * (config.d_model / config.decoder_heads); }
};

LlamaModel::LlamaModel(std::shared_ptr<const format::ModelFile> file,
                       std::shared_ptr<const ops::Device> device) {
  if (!device) invalid("LlamaModel: no device");
  std::shared_ptr<const format::ModelFile> checked = checked_file(std::move(file));
  const auto call = device->begin_call();
  impl_ = std::make_unique<Impl>(std::move(checked), std::move(device));
}

LlamaModel::LlamaModel(std::shared_ptr<const format::ModelFile> file, int threads)
    : LlamaModel(std::move(file), std::make_shared<ops::CpuDevice>(threads)) {}

LlamaModel::~LlamaModel() = default;

const format::ModelConfig& LlamaModel::config() const { return impl_->config; }
const format::ModelFile& LlamaModel::file() const { return *impl_->file; }
const ops::Device& LlamaModel::device() const { return impl_->device; }

EncoderOutput LlamaModel::encode(const std::vector<std::vector<int32_t>>& prompts) const {
  const format::ModelConfig& config = impl_->config;
  const ops::Device& device = impl_->device;
  check_source_ids(config, prompts);
  EncoderOutput output;
  output.batch = static_cast<int64_t>(prompts.size());
  output.hidden = tensor::Tensor(device.allocator());
  output.prompt_cache = tensor::Tensor(device.allocator());
  if (output.batch == 0) return output;
  const int64_t length = static_cast<int64_t>(prompts[0].size()) - 1;  // cached tokens
  for (const std::vector<int32_t>& prompt : prompts) {
    if (static_cast<int64_t>(prompt.size()) - 1 != length) {
      invalid("encode: the prompts of one call must have one length (" +
              std::to_string(length + 1) + " and " + std::to_string(prompt.size()) + ")");
    }
    output.start_tokens.push_back(prompt.back());
  }
  output.max_length = length;
  output.lengths.assign(static_cast<size_t>(output.batch), length);
  const int64_t batch = output.batch, rows = batch * length, kv = impl_->kv_width();
  const int64_t layers = static_cast<int64_t>(impl_->layers.size());
  output.prompt_cache.resize({layers, 2, rows, kv});
  if (length == 0) return output;
  ops::check_attention_keys(device, config.d_model / config.decoder_heads, length, "prompt length");

  std::vector<int32_t> ids(static_cast<size_t>(rows)), positions(ids.size());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < length; ++t) {
      ids[b * length + t] = prompts[b][t];
      positions[b * length + t] = static_cast<int32_t>(t);
    }
  }
  const std::vector<int64_t> zero_positions(ids.size(), 0);
  const auto call = device.begin_call();
  tensor::Tensor x(device.allocator()), keys(device.allocator()), values(device.allocator());
  impl_->embeddings.forward(ids.data(), zero_positions.data(), rows, x, device);
  layers::LayerScratch scratch;
  const size_t layer_bytes = sizeof(float) * static_cast<size_t>(rows * kv);
  for (int64_t l = 0; l < layers; ++l) {
    impl_->layers[l].prefill(x, batch, length, positions.data(), impl_->rotary, keys, values,
                             scratch, device);
    float* slot = output.prompt_cache.data() + l * 2 * rows * kv;
    device.allocator().copy(keys.data(), layer_bytes, slot);
    device.allocator().copy(values.data(), layer_bytes, slot + rows * kv);
  }
  return output;
}

std::unique_ptr<DecoderState> LlamaModel::start_decoding(const EncoderOutput& encoded,
                                                         int64_t max_hypotheses,
                                                         int64_t max_steps) const {
  const format::ModelConfig& config = impl_->config;
  const ops::Device& device = impl_->device;
  const int64_t kv = impl_->kv_width(), layers = static_cast<int64_t>(impl_->layers.size());
  const int64_t prompt = encoded.max_length, batch = encoded.batch;
  if (batch < 1) invalid("start_decoding: the encoded batch is empty");
  if (prompt < 0 || static_cast<int64_t>(encoded.start_tokens.size()) != batch ||
      encoded.prompt_cache.numel() != layers * 2 * batch * prompt * kv) {
    invalid("start_decoding: the prompt pass output is inconsistent (batch, length, cache size)");
  }
  if (&encoded.prompt_cache.allocator() != &device.allocator()) {
    invalid("start_decoding: the prompt cache is not in the memory of this model's device (" +
            device.name() + ")");
  }
  if (max_hypotheses < 1) invalid("max_hypotheses must be at least 1");
  if (max_hypotheses < batch) invalid("max_hypotheses must be at least the batch size");
  if (max_steps < 1) invalid("max_steps must be at least 1");
  const int64_t total = prompt + max_steps;
  if (total > config.max_positions) {
    invalid("the prompt (" + std::to_string(prompt + 1) + " tokens) and " +
            std::to_string(max_steps - 1) + " generated tokens exceed the context of " +
            std::to_string(config.max_positions) + " (model.max_positions)");
  }
  ops::check_attention_keys(device, config.d_model / config.decoder_heads, total, "context");
  const auto call = device.begin_call();
  auto state = std::make_unique<LlamaDecoderState>();
  state->device = impl_->device_holder;
  state->owner = impl_.get();
  state->batch = batch;
  state->prompt_steps = prompt;
  state->max_steps = max_steps;
  state->cache.emplace(layers, max_hypotheses, total, kv, device);
  if (prompt > 0) state->cache->reserve_through(prompt - 1, device.allocator());
  // Prompt token s of sentence b -> row b of chunk s.
  const size_t row_bytes = sizeof(float) * static_cast<size_t>(kv);
  for (int64_t l = 0; l < layers; ++l) {
    const float* keys = encoded.prompt_cache.data() + l * 2 * batch * prompt * kv;
    const float* values = keys + batch * prompt * kv;
    for (int64_t s = 0; s < prompt; ++s) {
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t row = (b * prompt + s) * kv;
        device.allocator().copy(keys + row, row_bytes, state->cache->keys(l, s) + b * kv);
        device.allocator().copy(values + row, row_bytes, state->cache->values(l, s) + b * kv);
      }
    }
  }
  state->ancestry.assign(static_cast<size_t>(max_hypotheses * total), 0);
  state->next_ancestry.assign(state->ancestry.size(), 0);
  state->positions.resize(static_cast<size_t>(max_hypotheses));
  state->zero_positions.assign(static_cast<size_t>(max_hypotheses), 0);
  state->hidden = tensor::Tensor(device.allocator());
  state->logits = tensor::Tensor(device.allocator());
  return state;
}

void LlamaModel::decode_step(DecoderState& decoder_state, const int32_t* tokens,
                             const int32_t* sentence, const int32_t* parent, int64_t n,
                             float* logits, CrossAttentionRecord* attention) const {
  const format::ModelConfig& config = impl_->config;
  const ops::Device& device = impl_->device;
  auto* state = dynamic_cast<LlamaDecoderState*>(&decoder_state);
  if (!state || state->owner != impl_.get()) {
    invalid("decode_step: the state was not made by this model's start_decoding()");
  }
  if (attention) invalid("decode_step: a language model has no cross-attention to record");
  const int64_t t = state->steps_run;
  check_step(config, {t, state->max_steps, state->cache->max_hypotheses(), state->batch,
                      state->previous_count},
             tokens, sentence, parent, n, logits);
  const int64_t prompt = state->prompt_steps, position = prompt + t;
  const int64_t stride = state->cache->max_steps();

  const auto call = device.begin_call();
  state->cache->reserve_through(position, device.allocator());
  if (t == 0) {
    // Each hypothesis starts from its sentence's prompt rows.
    for (int64_t h = 0; h < n; ++h) {
      int32_t* row = state->next_ancestry.data() + h * stride;
      std::fill(row, row + prompt, sentence[h]);
      row[prompt] = static_cast<int32_t>(h);
    }
  } else {
    extend_ancestry(state->ancestry, parent, n, position, stride, state->next_ancestry);
  }
  // Only now (all arguments valid, the cache block allocated) does the state change.
  state->ancestry.swap(state->next_ancestry);
  state->steps_run = t + 1;
  state->previous_count = n;

  std::fill(state->positions.begin(), state->positions.begin() + n, static_cast<int32_t>(position));
  tensor::Tensor& x = state->hidden;
  impl_->embeddings.forward(tokens, state->zero_positions.data(), n, x, device);
  for (size_t l = 0; l < impl_->layers.size(); ++l) {
    const layers::StepCache cache = state->cache->view(l, position + 1, state->ancestry.data(), stride);
    impl_->layers[l].step(x, state->positions.data(), impl_->rotary, cache, state->scratch, device);
  }
  ops::rms_norm(x, impl_->final_norm, config.layer_norm_epsilon, x, device);
  impl_->output_projection.forward_to_host(x, logits, state->logits, device);
}

}  // namespace pytransformer::models
