// Beam search with the conventions of Marian's BeamSearch::search and History (src/translator/
// beam_search.cpp, history.h): see docs/decoding.md, *marian*.
//
// What differs from the other two: a hypothesis that ends takes its place in the beam with it,
// so the beam narrows (k live hypotheses compete for k places), and a sentence is done when no
// hypothesis is left alive or when it reaches its length limit (then every live one ends
// there); a finished hypothesis is ranked by its score less the word penalty, normalised by
// its length with EOS.
#include <algorithm>
#include <cmath>
#include <limits>

#include "decoding/beam_candidates.h"
#include "decoding/strategies.h"

namespace pytransformer::decoding {

namespace {

struct Beam {
  std::vector<int32_t> tokens;  // prefix and generated ids (capacity: prefix + max_length)
  float score = 0.0f;           // Marian's path score: the sum of the log-probabilities
};

// Two sets of beam_size slots whose token vectors keep their capacity (the current beams and
// those being built), swapped after each step, so no step allocates.
struct Sentence {
  std::vector<Beam> beams;  // the first beam_count are live
  int64_t beam_count = 1;
  std::vector<Beam> next_beams;
  std::vector<int32_t> next_beam_parent;  // row of the beam each next beam extends
  std::vector<Hypothesis> finished;       // in the order they finished
};

}  // namespace

float marian_normalized_score(float score, int64_t length, const SearchOptions& options) {
  const float word_penalty = static_cast<float>(options.word_penalty) * static_cast<float>(length);
  return (score - word_penalty) /
         std::pow(static_cast<float>(length), static_cast<float>(options.length_penalty));
}

std::vector<SentenceResult> beam_search_marian(const models::EncoderDecoderModel& model,
                                               const models::EncoderOutput& encoded,
                                               const SubBatch& batch, const SearchOptions& options,
                                               DecodingHooks& hooks) {
  const auto& config = model.config();
  const int64_t beam_size = options.beam_size;
  const int64_t n_sentences = static_cast<int64_t>(batch.input_index.size());
  const LogitsProcessorList processors = model_processors(options, config);

  int64_t max_steps = 0;
  std::vector<Sentence> sentences(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    Sentence& sentence = sentences[i];
    const int64_t longest = static_cast<int64_t>(batch.prefix[i].size()) + batch.max_length[i];
    max_steps = std::max(max_steps, longest);
    sentence.beams.resize(beam_size);
    sentence.next_beams.resize(beam_size);
    for (Beam& beam : sentence.beams) beam.tokens.reserve(longest);
    for (Beam& beam : sentence.next_beams) beam.tokens.reserve(longest);
    sentence.next_beam_parent.reserve(beam_size);
    sentence.finished.reserve(beam_size);
  }

  const int64_t max_rows = n_sentences * beam_size;
  StepRunner runner(model, encoded, batch, max_rows, max_steps);
  const int64_t vocab = runner.vocab();
  const std::vector<std::vector<int32_t>> repetition_context =
      repetition_contexts(options, config, encoded, batch);

  BeamRows step_rows(encoded, config, max_rows);
  std::vector<float> beam_scores;
  beam_scores.reserve(beam_size);
  CandidateSelector selector;

  for (int64_t step = 0; step < max_steps && !step_rows.sentence.empty(); ++step) {
    if (hooks.between_steps && *hooks.between_steps) (*hooks.between_steps)();
    float* logits = runner.step(step_rows.tokens, step_rows.sentence, step_rows.parent);

    for (size_t first_row = 0; first_row < step_rows.sentence.size();) {
      const int32_t s = step_rows.sentence[first_row];
      Sentence& sentence = sentences[s];
      const auto& prefix = batch.prefix[s];
      const int64_t prefix_length = static_cast<int64_t>(prefix.size());
      const int64_t beams = sentence.beam_count;
      float* rows = logits + first_row * vocab;

      if (step < prefix_length) {  // forced prefix token, not scored
        sentence.beams[0].tokens.push_back(prefix[step]);
        step_rows.add_next(prefix[step], s, static_cast<int32_t>(first_row));
        first_row += beams;
        continue;
      }

      const int64_t generated = step - prefix_length;  // before this step's token
      beam_scores.resize(beams);
      for (int64_t b = 0; b < beams; ++b) {
        // Marian suppresses words in the path scores, after the log-softmax.
        beam_log_probs(rows + b * vocab, vocab, options, processors, repetition_context[s],
                       models::start_token(encoded, config, s), sentence.beams[b].tokens,
                       generated);
        beam_scores[b] = sentence.beams[b].score;
      }
      // The first free step widens the one start hypothesis to beam_size; after it, the live
      // hypotheses compete for their own number of places.
      const int64_t places = generated == 0 ? beam_size : beams;
      const std::vector<Candidate>& candidates = selector.best(rows, beam_scores, vocab, places);

      const bool at_max_length = generated + 1 >= batch.max_length[s];
      int64_t next_count = 0;
      sentence.next_beam_parent.clear();
      for (const Candidate& candidate : candidates) {
        // A candidate of a forbidden word (Marian's invalid path score) takes no place.
        if (candidate.score == -std::numeric_limits<float>::infinity()) continue;
        const std::vector<int32_t>& history = sentence.beams[candidate.beam].tokens;
        const bool is_eos = ends_sentence(config, candidate.token);
        if (is_eos || at_max_length) {
          Hypothesis hypothesis;
          hypothesis.tokens.reserve(history.size() + 1);  // one block, EOS or not
          hypothesis.tokens.assign(history.begin(), history.end());
          if (!is_eos) hypothesis.tokens.push_back(candidate.token);
          hypothesis.score = marian_normalized_score(candidate.score, generated + 1, options);
          hypothesis.finished = is_eos;
          sentence.finished.push_back(std::move(hypothesis));
          continue;
        }
        Beam& next_beam = sentence.next_beams[next_count++];
        next_beam.tokens.assign(history.begin(), history.end());
        next_beam.tokens.push_back(candidate.token);
        next_beam.score = candidate.score;
        step_rows.add_next(candidate.token, s, static_cast<int32_t>(first_row + candidate.beam));
      }
      sentence.beams.swap(sentence.next_beams);
      sentence.beam_count = next_count;
      first_row += beams;
    }
    step_rows.advance();
  }

  std::vector<SentenceResult> results(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    auto& hypotheses = sentences[i].finished;
    // History::nBest: the best normalised scores first (ties: the earlier to finish).
    std::stable_sort(hypotheses.begin(), hypotheses.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(hypotheses.size()) > options.n_best) hypotheses.resize(options.n_best);
    results[i].hypotheses = std::move(hypotheses);
  }
  return results;
}

}  // namespace pytransformer::decoding
