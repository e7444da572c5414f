#include "models/argument_checks.h"

#include <string>

#include "pytransformer/error.h"

namespace pytransformer::models {
namespace {

[[noreturn]] void invalid(const std::string& message) { throw InvalidArgument(message); }

}  // namespace

void check_source_ids(const format::ModelConfig& config,
                      const std::vector<std::vector<int32_t>>& source_ids) {
  for (size_t b = 0; b < source_ids.size(); ++b) {
    const std::vector<int32_t>& ids = source_ids[b];
    const int64_t length = static_cast<int64_t>(ids.size());
    if (length == 0) invalid("source_ids[" + std::to_string(b) + "] is empty");
    if (length > config.max_positions) {
      invalid("source_ids[" + std::to_string(b) + "] has " + std::to_string(length) +
              " tokens, more than model.max_positions = " + std::to_string(config.max_positions));
    }
    // A decoder-only model's prompts are in its one (target) vocabulary.
    const int64_t vocab = config.decoder_only() ? config.target_vocab_size : config.source_vocab_size;
    const char* vocab_name = config.decoder_only() ? "vocabulary" : "source vocabulary";
    for (int64_t t = 0; t < length; ++t) {
      if (ids[t] < 0 || ids[t] >= vocab) {
        invalid("source_ids[" + std::to_string(b) + "][" + std::to_string(t) + "] = " +
                std::to_string(ids[t]) + " is outside the " + vocab_name + " [0, " +
                std::to_string(vocab) + ")");
      }
    }
  }
}

void check_decoding_start(const format::ModelConfig& config, const EncoderOutput& encoded,
                          int64_t max_hypotheses, int64_t max_steps) {
  if (encoded.batch < 1) invalid("start_decoding: the encoded batch is empty");
  if (encoded.max_length < 1 || static_cast<int64_t>(encoded.lengths.size()) != encoded.batch ||
      encoded.hidden.numel() != encoded.batch * encoded.max_length * config.d_model) {
    invalid("start_decoding: the encoder output is inconsistent (batch, lengths, hidden size)");
  }
  for (int64_t length : encoded.lengths) {
    if (length < 1 || length > encoded.max_length) {
      invalid("start_decoding: an encoded length is outside [1, max_length]");
    }
  }
  if (max_hypotheses < 1) invalid("max_hypotheses must be at least 1");
  if (max_steps < 1) invalid("max_steps must be at least 1");
  if (max_steps > config.max_positions) {
    invalid("max_steps = " + std::to_string(max_steps) + " exceeds model.max_positions = " +
            std::to_string(config.max_positions));
  }
}

void check_step(const format::ModelConfig& config, const StepState& state, const int32_t* tokens,
                const int32_t* sentence, const int32_t* parent, int64_t n, const float* logits) {
  const int64_t t = state.step;
  if (t >= state.max_steps) {
    invalid("decode_step: step " + std::to_string(t) + " is past max_steps = " +
            std::to_string(state.max_steps));
  }
  if (n < 1 || n > state.max_hypotheses) {
    invalid("decode_step: n = " + std::to_string(n) + " hypotheses, expected 1.." +
            std::to_string(state.max_hypotheses));
  }
  if (!tokens || !sentence || !logits || (t > 0 && !parent)) {
    invalid("decode_step: missing tokens, sentence, parent or logits");
  }
  for (int64_t h = 0; h < n; ++h) {
    if (tokens[h] < 0 || tokens[h] >= config.target_vocab_size) {
      invalid("decode_step: tokens[" + std::to_string(h) + "] = " + std::to_string(tokens[h]) +
              " is outside the target vocabulary [0, " + std::to_string(config.target_vocab_size) +
              ")");
    }
    if (sentence[h] < 0 || sentence[h] >= state.batch) {
      invalid("decode_step: sentence[" + std::to_string(h) + "] = " +
              std::to_string(sentence[h]) + " is outside the encoded batch of " +
              std::to_string(state.batch));
    }
    if (t > 0 && (parent[h] < 0 || parent[h] >= state.previous_count)) {
      invalid("decode_step: parent[" + std::to_string(h) + "] = " + std::to_string(parent[h]) +
              " is not one of the previous step's " + std::to_string(state.previous_count) +
              " hypotheses");
    }
  }
}

}  // namespace pytransformer::models
