// Beam search with the conventions of Hugging Face transformers' generate() (num_beams > 1,
// early_stopping=False): see docs/decoding.md for the rules reproduced here.
#include <algorithm>
#include <cmath>

#include "decoding/beam_candidates.h"
#include "decoding/strategies.h"

namespace pytransformer::decoding {

namespace {

struct Beam {
  std::vector<int32_t> tokens;  // prefix and generated ids
  float score = 0.0f;           // sum of processed log-probabilities after the prefix
};

struct Sentence {
  std::vector<Beam> beams;           // one while the prefix is forced and at the first free step
  std::vector<Hypothesis> finished;  // the best `beam_size` finished ones, best first
};

// Keeps `finished` sorted (best first, earlier entries win ties) and at most `capacity` long.
void add_finished(std::vector<Hypothesis>& finished, Hypothesis hypothesis, size_t capacity) {
  auto position = std::upper_bound(
      finished.begin(), finished.end(), hypothesis.score,
      [](float score, const Hypothesis& other) { return score > other.score; });
  if (static_cast<size_t>(position - finished.begin()) >= capacity) return;
  finished.insert(position, std::move(hypothesis));
  if (finished.size() > capacity) finished.pop_back();
}

}  // namespace

std::vector<SentenceResult> beam_search_transformers(const models::EncoderDecoderModel& model,
                                                     const models::EncoderOutput& encoded,
                                                     const SubBatch& batch,
                                                     const SearchOptions& options,
                                                     DecodingHooks& hooks) {
  const auto& config = model.config();
  const int64_t beam_size = options.beam_size;
  const int64_t n_sentences = static_cast<int64_t>(batch.input_index.size());
  const int32_t eos = static_cast<int32_t>(config.eos_id);
  const LogitsProcessorList processors = model_processors(options, config);
  const double length_penalty = options.length_penalty;

  int64_t longest_prefix = 0;
  for (const auto& prefix : batch.prefix)
    longest_prefix = std::max<int64_t>(longest_prefix, prefix.size());
  const int64_t max_steps = longest_prefix + options.max_length;

  std::vector<Sentence> sentences(n_sentences);
  for (auto& sentence : sentences) sentence.beams.resize(1);

  StepRunner runner(model, encoded, n_sentences * beam_size, max_steps);
  const int64_t vocab = runner.vocab();

  // The rows of the current step: sentence and beam of each, and its input token.
  std::vector<int32_t> tokens(n_sentences, static_cast<int32_t>(config.decoder_start_id));
  std::vector<int32_t> row_sentence(n_sentences), row_parent;
  for (int64_t i = 0; i < n_sentences; ++i) row_sentence[i] = static_cast<int32_t>(i);
  std::vector<int32_t> next_tokens, next_sentence, next_parent;
  std::vector<float> beam_scores;

  for (int64_t step = 0; step < max_steps && !row_sentence.empty(); ++step) {
    if (hooks.between_steps && *hooks.between_steps) (*hooks.between_steps)();
    float* logits = runner.step(tokens, row_sentence, row_parent);

    next_tokens.clear();
    next_sentence.clear();
    next_parent.clear();
    for (size_t first_row = 0; first_row < row_sentence.size();) {
      const int32_t s = row_sentence[first_row];
      Sentence& sentence = sentences[s];
      const auto& prefix = batch.prefix[s];
      const int64_t prefix_length = static_cast<int64_t>(prefix.size());
      const int64_t beams = static_cast<int64_t>(sentence.beams.size());
      float* rows = logits + first_row * vocab;

      if (step < prefix_length) {  // forced prefix token, not scored
        sentence.beams[0].tokens.push_back(prefix[step]);
        next_tokens.push_back(prefix[step]);
        next_sentence.push_back(s);
        next_parent.push_back(static_cast<int32_t>(first_row));
        first_row += beams;
        continue;
      }

      const int64_t generated = step - prefix_length;  // before this step's token
      beam_scores.resize(beams);
      for (int64_t b = 0; b < beams; ++b) {
        log_softmax(rows + b * vocab, vocab);
        processors.apply(rows + b * vocab, vocab, generated);
        if (options.renormalize_logits) log_softmax(rows + b * vocab, vocab);
        beam_scores[b] = sentence.beams[b].score;
      }
      const std::vector<Candidate> candidates =
          best_candidates(rows, beam_scores, vocab, 2 * beam_size);

      const bool at_max_length = generated + 1 >= options.max_length;
      const float normaliser =
          static_cast<float>(std::pow(static_cast<double>(generated + 1), length_penalty));
      // Only the best `beam_size` candidates may finish; later ones only refill the beams.
      for (int64_t k = 0; k < std::min<int64_t>(beam_size, candidates.size()); ++k) {
        const Candidate& candidate = candidates[k];
        const bool is_eos = candidate.token == eos;
        if (!is_eos && !at_max_length) continue;
        Hypothesis hypothesis;
        hypothesis.tokens = sentence.beams[candidate.beam].tokens;
        if (!is_eos) hypothesis.tokens.push_back(candidate.token);
        hypothesis.score = candidate.score / normaliser;
        hypothesis.finished = is_eos;
        add_finished(sentence.finished, std::move(hypothesis), beam_size);
      }

      std::vector<Beam> next_beams;
      std::vector<int32_t> next_beam_parent;
      if (!at_max_length) {
        for (const Candidate& candidate : candidates) {
          if (candidate.token == eos) continue;
          next_beams.push_back({sentence.beams[candidate.beam].tokens, candidate.score});
          next_beams.back().tokens.push_back(candidate.token);
          next_beam_parent.push_back(static_cast<int32_t>(first_row + candidate.beam));
          if (static_cast<int64_t>(next_beams.size()) == beam_size) break;
        }
      }

      // Done when the length limit is reached, or when every finished slot is taken and the best
      // running beam, normalised at its current length, cannot beat the worst finished one.
      bool done = next_beams.empty();
      if (!done && static_cast<int64_t>(sentence.finished.size()) == beam_size) {
        const float best_possible = next_beams.front().score / normaliser;
        done = best_possible <= sentence.finished.back().score;
      }
      if (done) {
        next_beams.clear();
      } else {
        for (size_t b = 0; b < next_beams.size(); ++b) {
          next_tokens.push_back(next_beams[b].tokens.back());
          next_sentence.push_back(s);
          next_parent.push_back(next_beam_parent[b]);
        }
      }
      sentence.beams = std::move(next_beams);
      first_row += beams;
    }
    tokens.swap(next_tokens);
    row_sentence.swap(next_sentence);
    row_parent.swap(next_parent);
  }

  std::vector<SentenceResult> results(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    Sentence& sentence = sentences[i];
    auto& hypotheses = sentence.finished;
    if (static_cast<int64_t>(hypotheses.size()) > options.n_best) hypotheses.resize(options.n_best);
    results[i].hypotheses = std::move(hypotheses);
  }
  return results;
}

}  // namespace pytransformer::decoding
