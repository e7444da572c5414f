// The argument checks of the EncoderDecoderModel contract: bad inputs are refused with an
// InvalidArgument naming the argument, before any state changes (on every device alike).
#pragma once

#include <cstdint>
#include <vector>

#include "format/model_config.h"
#include "models/encoder_decoder_model.h"

namespace pytransformer::models {

// encode(): every sentence non-empty, at most max_positions ids, each < source_vocab_size
// (target_vocab_size for a decoder-only model's prompts).
void check_source_ids(const format::ModelConfig& config,
                      const std::vector<std::vector<int32_t>>& source_ids);

// start_decoding(): a consistent, non-empty encoder output; 1 <= max_hypotheses;
// 1 <= max_steps <= max_positions.
void check_decoding_start(const format::ModelConfig& config, const EncoderOutput& encoded,
                          int64_t max_hypotheses, int64_t max_steps);

// What a decoding loop's state knows when decode_step() is called.
struct StepState {
  int64_t step = 0;            // the step about to run
  int64_t max_steps = 0;
  int64_t max_hypotheses = 0;
  int64_t batch = 0;           // encoded sentences
  int64_t previous_count = 0;  // hypotheses of the previous step
};

// decode_step(): step < max_steps, 1 <= n <= max_hypotheses, the arrays present (parent from
// step 1 on), tokens < target_vocab_size, sentence < batch, parent < previous_count.
void check_step(const format::ModelConfig& config, const StepState& state, const int32_t* tokens,
                const int32_t* sentence, const int32_t* parent, int64_t n, const float* logits);

}  // namespace pytransformer::models
