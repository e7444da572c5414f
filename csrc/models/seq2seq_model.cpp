#include "models/seq2seq_model.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "format/tensor_names.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/kernels.h"
#include "layers/decoder_layer.h"
#include "layers/embeddings.h"
#include "layers/encoder_layer.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/scratch.h"
#include "models/ancestry.h"
#include "models/argument_checks.h"
#include "pytransformer/error.h"
#include "tensor/dump.h"
#include "tensor/tensor.h"
#include "tensor/thread_pool.h"

namespace pytransformer::models {
namespace {

[[noreturn]] void invalid(const std::string& message) { throw InvalidArgument(message); }

// The cache of one decoding loop (design in seq2seq_model.h). Everything is sized in
// start_decoding(); decode_step() only writes into it.
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
  // Per decoder layer, the self-attention keys and values of every step:
  // [max_steps, max_hypotheses, d], the chunk of step s at row s * max_hypotheses, of which
  // step s uses its first n_s rows. Uninitialised (new float[]): only the rows written
  // become resident memory.
  std::vector<std::unique_ptr<float[]>> self_keys;
  std::vector<std::unique_ptr<float[]>> self_values;
  // Per decoder layer, the chunk base of every step: [max_steps] pointers into self_keys/values.
  std::vector<std::vector<const float*>> step_keys;
  std::vector<std::vector<const float*>> step_values;
  // ancestry[h * max_steps + s]: row in chunk s of hypothesis h's ancestor (h itself at the
  // last step). next_ancestry is the buffer the next step's table is built in.
  std::vector<int32_t> ancestry;
  std::vector<int32_t> next_ancestry;
  // Buffers of one step, reused by the next.
  std::vector<int64_t> positions;  // [max_hypotheses]
  tensor::Tensor hidden;           // [n, d]
  layers::LayerScratch scratch;
  std::vector<tensor::Tensor> cross_probabilities;  // per decoder layer, when recorded
};

struct Seq2SeqDecoderState final : DecoderState {
  DecoderCache cache;
  int64_t step() const override { return cache.step; }
};

}  // namespace

struct Seq2SeqModel::Impl {
  std::shared_ptr<const format::ModelFile> file;
  const format::ModelConfig& config;
  tensor::ThreadPool pool;
  layers::Embeddings encoder_embeddings;
  layers::Embeddings decoder_embeddings;
  std::vector<layers::EncoderLayer> encoder_layers;
  std::vector<layers::DecoderLayer> decoder_layers;
  std::optional<layers::LayerNorm> encoder_final_norm;
  std::optional<layers::LayerNorm> decoder_final_norm;
  layers::Linear output_projection;

  Impl(std::shared_ptr<const format::ModelFile> model_file, int threads)
      : file(std::move(model_file)),
        config(file->config()),
        pool(threads),
        encoder_embeddings(*file, format::Stack::ENCODER),
        decoder_embeddings(*file, format::Stack::DECODER),
        output_projection(*file, format::stack_scope(format::Stack::DECODER), "out_proj",
                          config.output_bias) {
    for (int64_t i = 0; i < config.encoder_layers; ++i) encoder_layers.emplace_back(*file, i);
    for (int64_t i = 0; i < config.decoder_layers; ++i) decoder_layers.emplace_back(*file, i);
    if (config.pre_norm) {
      encoder_final_norm.emplace(*file, format::stack_scope(format::Stack::ENCODER), "final_norm");
      decoder_final_norm.emplace(*file, format::stack_scope(format::Stack::DECODER), "final_norm");
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
  if (file->config().d_model % 2 != 0) {
    throw FormatError(file->path() + ": model.d_model must be even (sinusoidal positions)");
  }
  return file;
}

// Selects the kernel table (throws on a bad PYTRANSFORMER_ISA) and resolves threads = 0.
int checked_threads(int threads) {
  kernels::cpu::kernels();
  return threads > 0 ? threads : std::max(1, kernels::cpu::cpu_features().physical_cores);
}

}  // namespace

Seq2SeqModel::Seq2SeqModel(std::shared_ptr<const format::ModelFile> file, int threads)
    : impl_(std::make_unique<Impl>(checked_file(std::move(file)), checked_threads(threads))) {}

Seq2SeqModel::~Seq2SeqModel() = default;

const format::ModelConfig& Seq2SeqModel::config() const { return impl_->config; }
const format::ModelFile& Seq2SeqModel::file() const { return *impl_->file; }

EncoderOutput Seq2SeqModel::encode(const std::vector<std::vector<int32_t>>& source_ids) const {
  const format::ModelConfig& config = impl_->config;
  const int64_t d = config.d_model;
  check_source_ids(config, source_ids);
  EncoderOutput output;
  output.batch = static_cast<int64_t>(source_ids.size());
  for (const std::vector<int32_t>& ids : source_ids) {
    output.lengths.push_back(static_cast<int64_t>(ids.size()));
    output.max_length = std::max(output.max_length, output.lengths.back());
  }
  if (output.batch == 0) return output;

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
  tensor::Tensor x;
  impl_->encoder_embeddings.forward(ids.data(), positions.data(), batch * max_length, x);
  x.reshape({batch, max_length, d});
  tensor::dump("encoder.embeddings", x);
  {
    layers::LayerScratch scratch;  // freed before the output is copied out
    for (size_t i = 0; i < impl_->encoder_layers.size(); ++i) {
      impl_->encoder_layers[i].forward(x, output.lengths.data(), scratch, impl_->pool);
      tensor::dump("encoder.layer" + std::to_string(i), x);
    }
  }
  if (impl_->encoder_final_norm) impl_->encoder_final_norm->forward(x, nullptr, x);
  for (int64_t b = 0; b < batch; ++b) {
    float* padding = x.data() + (b * max_length + output.lengths[b]) * d;
    std::fill(padding, padding + (max_length - output.lengths[b]) * d, 0.0f);
  }
  tensor::dump("encoder.output", x);
  output.hidden.assign(x.data(), x.data() + x.numel());
  return output;
}

std::unique_ptr<DecoderState> Seq2SeqModel::start_decoding(const EncoderOutput& encoded,
                                                           int64_t max_hypotheses,
                                                           int64_t max_steps) const {
  const format::ModelConfig& config = impl_->config;
  const int64_t d = config.d_model;
  check_decoding_start(config, encoded, max_hypotheses, max_steps);
  auto decoder_state = std::make_unique<Seq2SeqDecoderState>();
  DecoderCache* state = &decoder_state->cache;
  state->batch = encoded.batch;
  state->source_length = encoded.max_length;
  state->lengths = encoded.lengths;
  state->max_hypotheses = max_hypotheses;
  state->max_steps = max_steps;
  tensor::Tensor memory({encoded.batch, encoded.max_length, d});
  std::copy(encoded.hidden.begin(), encoded.hidden.end(), memory.data());
  const size_t layers = impl_->decoder_layers.size();
  state->cross_keys.resize(layers);
  state->cross_values.resize(layers);
  for (size_t l = 0; l < layers; ++l) {
    impl_->decoder_layers[l].cross_attention().project_memory(memory, state->cross_keys[l],
                                                              state->cross_values[l], impl_->pool);
  }
  // One allocation per layer and direction, never filled: a large max_steps costs address
  // space, not resident memory.
  const int64_t chunk = max_hypotheses * d;
  state->self_keys.resize(layers);
  state->self_values.resize(layers);
  state->step_keys.assign(layers, std::vector<const float*>(static_cast<size_t>(max_steps)));
  state->step_values.assign(layers, std::vector<const float*>(static_cast<size_t>(max_steps)));
  for (size_t l = 0; l < layers; ++l) {
    state->self_keys[l].reset(new float[max_steps * chunk]);
    state->self_values[l].reset(new float[max_steps * chunk]);
    for (int64_t s = 0; s < max_steps; ++s) {
      state->step_keys[l][s] = state->self_keys[l].get() + s * chunk;
      state->step_values[l][s] = state->self_values[l].get() + s * chunk;
    }
  }
  state->ancestry.assign(static_cast<size_t>(max_hypotheses * max_steps), 0);
  state->next_ancestry.assign(state->ancestry.size(), 0);
  state->positions.resize(static_cast<size_t>(max_hypotheses));
  state->cross_probabilities.resize(layers);
  return decoder_state;
}

void Seq2SeqModel::decode_step(DecoderState& decoder_state, const int32_t* tokens, const int32_t* sentence,
                               const int32_t* parent, int64_t n, float* logits,
                               CrossAttentionRecord* attention) const {
  const format::ModelConfig& config = impl_->config;
  const int64_t d = config.d_model;
  auto* own_state = dynamic_cast<Seq2SeqDecoderState*>(&decoder_state);
  if (!own_state) invalid("decode_step: the state was not made by this model's start_decoding()");
  DecoderCache& state = own_state->cache;
  const int64_t t = state.step;
  check_step(config, {t, state.max_steps, state.max_hypotheses, state.batch, state.previous_count},
             tokens, sentence, parent, n, logits);

  // Ancestry: hypothesis h inherits its parent's rows and owns row h of this step's chunk.
  const int64_t stride = state.max_steps;
  extend_ancestry(state.ancestry, parent, n, t, stride, state.next_ancestry);
  // Only now (all arguments valid) does the state change.
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
  impl_->decoder_embeddings.forward(tokens, state.positions.data(), n, x);
  if (dumping) dump_step("embeddings", x);
  const int64_t chunk_offset = t * state.max_hypotheses * d;
  for (size_t l = 0; l < layers; ++l) {
    layers::StepCache cache;
    cache.steps = t + 1;
    cache.step_keys = state.step_keys[l].data();
    cache.step_values = state.step_values[l].data();
    cache.current_keys = state.self_keys[l].get() + chunk_offset;
    cache.current_values = state.self_values[l].get() + chunk_offset;
    cache.ancestry = state.ancestry.data();
    cache.ancestry_stride = stride;
    layers::CrossMemory memory;
    memory.keys = &state.cross_keys[l];
    memory.values = &state.cross_values[l];
    memory.lengths = state.lengths.data();
    memory.sentence = sentence;
    impl_->decoder_layers[l].step(x, cache, memory,
                                  attention ? &state.cross_probabilities[l] : nullptr,
                                  state.scratch, impl_->pool);
    if (dumping) dump_step("layer" + std::to_string(l), x);
  }
  if (impl_->decoder_final_norm) impl_->decoder_final_norm->forward(x, nullptr, x);
  // Straight into the caller's buffer: a temporary would cost an n x vocabulary allocation,
  // zero-fill and copy per step.
  impl_->output_projection.forward(x, logits, impl_->pool);
  if (dumping) {
    tensor::Tensor scores;
    scores.resize({n, impl_->output_projection.out_features()});
    std::memcpy(scores.data(), logits, sizeof(float) * scores.numel());
    dump_step("logits", scores);
  }

  if (attention) {
    // [n, heads, 1, S] per layer -> [layers, heads, n, S].
    const int64_t heads = config.decoder_heads, source = state.source_length;
    attention->probabilities.resize(layers * static_cast<size_t>(heads * n * source));
    float* out = attention->probabilities.data();
    for (size_t l = 0; l < layers; ++l) {
      const float* layer_probabilities = state.cross_probabilities[l].data();
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
