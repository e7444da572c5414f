#include "decoding/strategies.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <numeric>

namespace pytransformer::decoding {

StepRunner::StepRunner(const models::EncoderDecoderModel& model,
                       const models::EncoderOutput& encoded, const SubBatch& batch,
                       int64_t max_hypotheses, int64_t max_steps)
    : model_(model),
      state_(model.start_decoding(encoded, max_hypotheses, max_steps)),
      vocab_(model.config().target_vocab_size) {
  logits_.resize(static_cast<size_t>(max_hypotheses * vocab_));
  if (batch.allowed.empty()) return;
  std::vector<int32_t> all;
  for (const auto& ids : batch.allowed) {
    std::vector<int32_t> merged;
    std::set_union(all.begin(), all.end(), ids.begin(), ids.end(), std::back_inserter(merged));
    all.swap(merged);
  }
  std::vector<int32_t> vocabulary(static_cast<size_t>(vocab_));
  std::iota(vocabulary.begin(), vocabulary.end(), 0);
  const std::vector<int32_t>& candidates =
      static_cast<int64_t>(all.size()) < vocab_ && model.restrict_output(*state_, all)
          ? all : vocabulary;
  for (const auto& ids : batch.allowed) {
    masked_.emplace_back();
    std::set_difference(candidates.begin(), candidates.end(), ids.begin(), ids.end(),
                        std::back_inserter(masked_.back()));
  }
}

StepRunner::~StepRunner() = default;

float* StepRunner::step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& sentence,
                        const std::vector<int32_t>& parent) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  model_.decode_step(*state_, tokens.data(), sentence.data(), parent.data(), n, logits_.data());
  if (!masked_.empty()) {
    constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) {
      float* row = logits_.data() + i * vocab_;
      for (const int32_t id : masked_[static_cast<size_t>(sentence[i])]) row[id] = kNegativeInfinity;
    }
  }
  return logits_.data();
}

}  // namespace pytransformer::decoding

namespace pytransformer::decoding {

LogitsProcessorList model_processors(const SearchOptions& options,
                                     const format::ModelConfig& config) {
  LogitsProcessorList processors;
  if (!options.suppressed_ids.empty())
    processors.add(std::make_unique<SuppressTokens>(options.suppressed_ids));
  if (options.min_length > 0)
    processors.add(std::make_unique<MinLength>(config.eos_id, options.min_length));
  if (options.forced_eos)
    processors.add(std::make_unique<ForcedEos>(config.eos_id, options.max_length));
  return processors;
}

void beam_log_probs(float* row, int64_t vocab, const SearchOptions& options,
                    const LogitsProcessorList& processors, const std::vector<int32_t>& context,
                    int32_t start_token, const std::vector<int32_t>& history, int64_t generated) {
  log_softmax(row, vocab);
  if (options.repetition_penalty != 1.0)
    penalize_repetitions(row, vocab, context, history, options.repetition_penalty);
  ban_repeated_ngrams(row, start_token, history, options.no_repeat_ngram_size);
  processors.apply(row, vocab, generated);
}

std::vector<std::vector<int32_t>> repetition_contexts(const SearchOptions& options,
                                                      const format::ModelConfig& config,
                                                      const models::EncoderOutput& encoded,
                                                      const SubBatch& batch) {
  std::vector<std::vector<int32_t>> contexts(batch.input_index.size());
  if (options.repetition_penalty == 1.0) return contexts;
  for (size_t i = 0; i < contexts.size(); ++i) {
    contexts[i] = config.decoder_only()
                      ? *batch.sources[i]
                      : std::vector<int32_t>{models::start_token(encoded, config,
                                                                 static_cast<int64_t>(i))};
  }
  return contexts;
}

LogitsProcessorList sampling_warpers(const SearchOptions& options) {
  LogitsProcessorList warpers;
  if (options.temperature != 1.0) warpers.add(std::make_unique<Temperature>(options.temperature));
  if (options.top_k > 0) warpers.add(std::make_unique<TopK>(options.top_k));
  if (options.top_p < 1.0) warpers.add(std::make_unique<TopP>(options.top_p));
  if (options.min_p > 0.0) warpers.add(std::make_unique<MinP>(options.min_p));
  return warpers;
}

BeamRows::BeamRows(const models::EncoderOutput& encoded, const format::ModelConfig& config,
                   int64_t max_rows) {
  for (auto* rows : {&tokens, &sentence, &parent, &next_tokens, &next_sentence, &next_parent}) {
    rows->reserve(static_cast<size_t>(max_rows));
  }
  for (int64_t i = 0; i < encoded.batch; ++i) {
    tokens.push_back(models::start_token(encoded, config, i));
    sentence.push_back(static_cast<int32_t>(i));
  }
}

void BeamRows::add_next(int32_t token, int32_t row_sentence, int32_t row_parent) {
  next_tokens.push_back(token);
  next_sentence.push_back(row_sentence);
  next_parent.push_back(row_parent);
}

void BeamRows::drop_next(int64_t count) {
  const size_t kept = next_tokens.size() - static_cast<size_t>(count);
  next_tokens.resize(kept);
  next_sentence.resize(kept);
  next_parent.resize(kept);
}

void BeamRows::advance() {
  tokens.swap(next_tokens);
  sentence.swap(next_sentence);
  parent.swap(next_parent);
  next_tokens.clear();
  next_sentence.clear();
  next_parent.clear();
}

}  // namespace pytransformer::decoding
