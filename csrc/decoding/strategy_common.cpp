#include "decoding/strategies.h"

namespace pytransformer::decoding {

StepRunner::StepRunner(const models::EncoderDecoderModel& model,
                       const models::EncoderOutput& encoded,
                       int64_t max_hypotheses, int64_t max_steps)
    : model_(model),
      state_(model.start_decoding(encoded, max_hypotheses, max_steps)),
      vocab_(model.config().target_vocab_size) {
  logits_.resize(static_cast<size_t>(max_hypotheses * vocab_));
}

StepRunner::~StepRunner() = default;

float* StepRunner::step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& sentence,
                        const std::vector<int32_t>& parent) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  model_.decode_step(*state_, tokens.data(), sentence.data(), parent.data(), n, logits_.data());
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
