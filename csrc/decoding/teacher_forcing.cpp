#include "decoding/teacher_forcing.h"

#include <algorithm>
#include <string>

#include "pytransformer/error.h"

namespace pytransformer::decoding {

namespace {

using models::CrossAttentionRecord;

// Runs the decoder over `targets`; on_step(t, active, logits [n, V], record) receives each
// step's results, `active` holding the batch index of each of its n rows.
template <typename OnStep>
void teacher_force(const models::EncoderDecoderModel& model, const TokenIdBatch& sources,
                   const TokenIdBatch& targets, bool record_attention, const OnStep& on_step) {
  if (sources.size() != targets.size()) {
    throw InvalidArgument("source_ids has " + std::to_string(sources.size()) +
                          " sentences but target_ids has " + std::to_string(targets.size()));
  }
  int64_t steps = 0;
  for (size_t b = 0; b < targets.size(); ++b) {
    if (targets[b].empty()) throw InvalidArgument("target_ids[" + std::to_string(b) + "] is empty");
    steps = std::max<int64_t>(steps, static_cast<int64_t>(targets[b].size()));
  }
  const models::EncoderOutput encoded = model.encode(sources);
  if (encoded.batch == 0) return;
  auto state = model.start_decoding(encoded, encoded.batch, steps);
  const int64_t vocab = model.config().target_vocab_size;
  std::vector<int32_t> previous_active;
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<int32_t> active, tokens, parent;
    for (int32_t b = 0; b < static_cast<int32_t>(targets.size()); ++b) {
      if (static_cast<int64_t>(targets[b].size()) <= t) continue;
      active.push_back(b);
      tokens.push_back(targets[b][t]);
      const auto found = std::find(previous_active.begin(), previous_active.end(), b);
      parent.push_back(static_cast<int32_t>(found - previous_active.begin()));
    }
    const int64_t n = static_cast<int64_t>(active.size());
    std::vector<float> logits(static_cast<size_t>(n * vocab));
    CrossAttentionRecord record;
    model.decode_step(*state, tokens.data(), active.data(), parent.data(), n, logits.data(),
                      record_attention ? &record : nullptr);
    on_step(t, active, logits, record);
    previous_active = std::move(active);
  }
}

}  // namespace

std::vector<std::vector<float>> teacher_forced_logits(const models::EncoderDecoderModel& model,
                                                      const TokenIdBatch& sources,
                                                      const TokenIdBatch& targets) {
  const int64_t vocab = model.config().target_vocab_size;
  std::vector<std::vector<float>> per_sentence(targets.size());
  teacher_force(model, sources, targets, false,
                [&](int64_t, const std::vector<int32_t>& active, const std::vector<float>& logits,
                    const CrossAttentionRecord&) {
                  for (size_t i = 0; i < active.size(); ++i) {
                    std::vector<float>& out = per_sentence[active[i]];
                    out.insert(out.end(), logits.begin() + i * vocab,
                               logits.begin() + (i + 1) * vocab);
                  }
                });
  return per_sentence;
}

std::vector<std::vector<float>> teacher_forced_cross_attention(
    const models::EncoderDecoderModel& model, const TokenIdBatch& sources,
    const TokenIdBatch& targets) {
  const format::ModelConfig& config = model.config();
  const int64_t layers = config.decoder_layers, heads = config.decoder_heads;
  int64_t source_length = 0;
  for (const auto& ids : sources) source_length = std::max<int64_t>(source_length, ids.size());
  std::vector<std::vector<float>> per_sentence(targets.size());
  for (size_t b = 0; b < targets.size() && b < sources.size(); ++b) {
    per_sentence[b].resize(layers * heads * targets[b].size() * sources[b].size());
  }
  teacher_force(
      model, sources, targets, true,
      [&](int64_t t, const std::vector<int32_t>& active, const std::vector<float>&,
          const CrossAttentionRecord& record) {
        const int64_t n = static_cast<int64_t>(active.size());
        for (int64_t i = 0; i < n; ++i) {
          const int32_t b = active[i];
          const int64_t target_length = static_cast<int64_t>(targets[b].size());
          const int64_t length = static_cast<int64_t>(sources[b].size());
          for (int64_t l = 0; l < layers; ++l) {
            for (int64_t h = 0; h < heads; ++h) {
              const float* from =
                  record.probabilities.data() + ((l * heads + h) * n + i) * source_length;
              float* to = per_sentence[b].data() + ((l * heads + h) * target_length + t) * length;
              std::copy(from, from + length, to);
            }
          }
        }
      });
  return per_sentence;
}

}  // namespace pytransformer::decoding
