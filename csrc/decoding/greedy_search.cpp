// Greedy search and random sampling: one token per hypothesis and step (docs/decoding.md).
#include <algorithm>
#include <cmath>
#include <utility>

#include "decoding/logits_processors.h"
#include "decoding/sampler.h"
#include "decoding/strategies.h"

namespace pytransformer::decoding {

namespace {

struct GreedyRow {
  int32_t sentence = 0;       // in the encoded sub-batch
  std::vector<int32_t> tokens;  // prefix and generated ids, without EOS (capacity: max_steps)
  float score = 0.0f;         // sum of token log-probabilities
  bool finished = false;
  int32_t next_input = 0;
  TokenSampler sampler;
};

}  // namespace

std::vector<SentenceResult> greedy_search(const models::EncoderDecoderModel& model,
                                          const models::EncoderOutput& encoded,
                                          const SubBatch& batch, const SearchOptions& options,
                                          DecodingHooks& hooks) {
  const auto& config = model.config();
  const bool ctranslate2 = options.convention == format::SearchConvention::CTRANSLATE2;
  const bool marian = options.convention == format::SearchConvention::MARIAN;
  const bool sampling = options.sampling && options.temperature > 0.0;
  const int64_t samples = sampling ? options.n_best : 1;
  const int64_t n_sentences = static_cast<int64_t>(batch.input_index.size());
  const LogitsProcessorList processors = model_processors(options, config);
  const LogitsProcessorList warpers = sampling_warpers(options);

  int64_t longest_prefix = 0;
  for (const auto& prefix : batch.prefix)
    longest_prefix = std::max<int64_t>(longest_prefix, prefix.size());
  // ctranslate2 counts max_length from the decoder start, the prefix included.
  const int64_t max_steps = ctranslate2 ? options.max_length : longest_prefix + options.max_length;

  std::vector<GreedyRow> rows;
  rows.reserve(n_sentences * samples);
  for (int64_t i = 0; i < n_sentences; ++i) {
    for (int64_t k = 0; k < samples; ++k) {
      GreedyRow row{static_cast<int32_t>(i), {}, 0.0f, false,
                    models::start_token(encoded, config, i),
                    TokenSampler(options.seed, uint64_t(batch.input_index[i] * samples + k))};
      row.tokens.reserve(max_steps);
      rows.push_back(std::move(row));
    }
  }

  const std::vector<std::vector<int32_t>> repetition_context =
      repetition_contexts(options, config, encoded, batch);

  StepRunner runner(model, encoded, batch, static_cast<int64_t>(rows.size()), max_steps);
  const int64_t vocab = runner.vocab();
  // Buffers of one step, reused by the next and sized for every row, so no step allocates.
  // active: the rows decoded this step, in order.
  std::vector<int32_t> active, tokens, sentence, parent, next_active;
  for (auto* buffer : {&active, &tokens, &sentence, &parent, &next_active})
    buffer->reserve(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) active.push_back(static_cast<int32_t>(r));
  std::vector<float> warped(sampling ? vocab : 0);
  struct Emitted {  // a token chosen this step, to report to the callback
    int64_t input_sentence;
    int32_t token;
    int32_t row;
    float log_prob;
    bool operator<(const Emitted& other) const { return input_sentence < other.input_sentence; }
  };
  std::vector<Emitted> emitted;
  emitted.reserve(rows.size());

  for (int64_t step = 0; step < max_steps && !active.empty(); ++step) {
    if (hooks.between_steps && *hooks.between_steps) (*hooks.between_steps)();
    tokens.clear();
    sentence.clear();
    for (int32_t r : active) {
      tokens.push_back(rows[r].next_input);
      sentence.push_back(rows[r].sentence);
    }
    float* logits = runner.step(tokens, sentence, parent);

    next_active.clear();
    parent.clear();
    emitted.clear();
    for (size_t a = 0; a < active.size(); ++a) {
      GreedyRow& row = rows[active[a]];
      const auto& prefix = batch.prefix[row.sentence];
      const int64_t prefix_length = static_cast<int64_t>(prefix.size());
      float* scores = logits + a * vocab;
      int32_t token;
      float log_prob = 0.0f;  // forced prefix tokens are not scored
      if (step < prefix_length) {
        token = prefix[step];
      } else {
        const int64_t generated = ctranslate2 ? step : step - prefix_length;
        if (options.repetition_penalty != 1.0) {
          penalize_repetitions(scores, vocab, repetition_context[row.sentence], row.tokens,
                               options.repetition_penalty);
        }
        ban_repeated_ngrams(scores, models::start_token(encoded, config, row.sentence), row.tokens,
                            options.no_repeat_ngram_size);
        processors.apply(scores, vocab, generated);
        if (sampling) {
          std::copy(scores, scores + vocab, warped.begin());
          warpers.apply(warped.data(), vocab, generated);
          token = static_cast<int32_t>(row.sampler.sample(warped.data(), vocab));
        } else {
          token = static_cast<int32_t>(argmax(scores, vocab));
        }
        log_softmax(scores, vocab);
        log_prob = scores[token];
        emitted.push_back({batch.input_index[row.sentence], token, active[a], log_prob});
      }
      row.score += log_prob;
      const bool is_eos = ends_sentence(config, token) && step >= prefix_length;
      if (!is_eos) row.tokens.push_back(token);
      const int64_t counted = ctranslate2 ? step : step - prefix_length;
      if (is_eos || counted + 1 >= batch.max_length[row.sentence]) {
        row.finished = is_eos;
      } else {
        row.next_input = token;
        next_active.push_back(active[a]);
        parent.push_back(static_cast<int32_t>(a));
      }
    }
    active.swap(next_active);

    if (hooks.on_token && *hooks.on_token) {
      std::sort(emitted.begin(), emitted.end());
      for (size_t e = 0; e < emitted.size(); ++e) {
        if ((*hooks.on_token)(emitted[e].input_sentence, emitted[e].token)) continue;
        hooks.stopped = true;
        // The results hold what the caller has seen: undo this step's unreported tokens.
        for (size_t later = e + 1; later < emitted.size(); ++later) {
          GreedyRow& row = rows[emitted[later].row];
          row.score -= emitted[later].log_prob;
          if (row.finished)
            row.finished = false;
          else
            row.tokens.pop_back();
        }
        break;
      }
    }
    if (hooks.stopped) break;
  }

  std::vector<SentenceResult> results(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    auto& hypotheses = results[i].hypotheses;
    for (int64_t k = 0; k < samples; ++k) {
      GreedyRow& row = rows[i * samples + k];
      Hypothesis hypothesis;
      hypothesis.score = row.score;
      if (ctranslate2)  // normalised by the length with the end token, as CTranslate2 does
        hypothesis.score =
            row.score / std::pow(static_cast<float>(row.tokens.size() + (row.finished ? 1 : 0)),
                                 static_cast<float>(options.length_penalty));
      else if (marian)  // Marian's beam search of width 1 ranks its one hypothesis so
        hypothesis.score = marian_normalized_score(
            row.score,
            static_cast<int64_t>(row.tokens.size() - batch.prefix[i].size()) + row.finished,
            options);
      hypothesis.finished = row.finished;
      hypothesis.tokens = std::move(row.tokens);
      hypotheses.push_back(std::move(hypothesis));
    }
    std::stable_sort(hypotheses.begin(), hypotheses.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  }
  return results;
}

}  // namespace pytransformer::decoding
