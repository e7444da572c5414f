// Beam search with the conventions of Hugging Face transformers' generate() (num_beams > 1,
// early_stopping=False): see docs/decoding.md for the rules reproduced here.
#include <algorithm>
#include <cmath>

#include "decoding/beam_candidates.h"
#include "decoding/strategies.h"

namespace pytransformer::decoding {

namespace {

struct Beam {
  std::vector<int32_t> tokens;  // prefix and generated ids (capacity: prefix + max_length)
  float score = 0.0f;           // sum of processed log-probabilities after the prefix
};

// The beams live in two sets of beam_size slots whose token vectors keep their capacity:
// a step writes the next beams into next_beams, then the two sets swap, so no step allocates.
struct Sentence {
  std::vector<Beam> beams;  // the first beam_count are live: one while the prefix is forced
  int64_t beam_count = 1;   // and at the first free step
  std::vector<Beam> next_beams;            // being built by the current step
  std::vector<int32_t> next_beam_parent;   // row of the beam each next beam extends
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
  const LogitsProcessorList processors = model_processors(options, config);
  const double length_penalty = options.length_penalty;

  int64_t longest_prefix = 0;
  for (const auto& prefix : batch.prefix)
    longest_prefix = std::max<int64_t>(longest_prefix, prefix.size());
  const int64_t max_steps = longest_prefix + options.max_length;

  std::vector<Sentence> sentences(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    Sentence& sentence = sentences[i];
    const size_t longest = batch.prefix[i].size() + static_cast<size_t>(options.max_length);
    sentence.beams.resize(beam_size);
    sentence.next_beams.resize(beam_size);
    for (Beam& beam : sentence.beams) beam.tokens.reserve(longest);
    for (Beam& beam : sentence.next_beams) beam.tokens.reserve(longest);
    sentence.next_beam_parent.reserve(beam_size);
    sentence.finished.reserve(beam_size + 1);
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
        // transformers' processors act on the log-probabilities, the repetition penalty
        // first: over the context (prompt or decoder start) and the beam's tokens.
        beam_log_probs(rows + b * vocab, vocab, options, processors, repetition_context[s],
                       models::start_token(encoded, config, s), sentence.beams[b].tokens,
                       generated);
        if (options.renormalize_logits) log_softmax(rows + b * vocab, vocab);
        beam_scores[b] = sentence.beams[b].score;
      }
      const std::vector<Candidate>& candidates =
          selector.best(rows, beam_scores, vocab, 2 * beam_size);

      const bool at_max_length = generated + 1 >= options.max_length;
      const int64_t counted = generated + 1 + (options.count_prefix ? prefix_length : 0);
      const float normaliser =
          static_cast<float>(std::pow(static_cast<double>(counted), length_penalty));
      // Only the best `beam_size` candidates may finish; later ones only refill the beams.
      for (int64_t k = 0; k < std::min<int64_t>(beam_size, candidates.size()); ++k) {
        const Candidate& candidate = candidates[k];
        const bool is_eos = ends_sentence(config, candidate.token);
        if (!is_eos && !at_max_length) continue;
        Hypothesis hypothesis;
        const std::vector<int32_t>& history = sentence.beams[candidate.beam].tokens;
        hypothesis.tokens.reserve(history.size() + 1);  // one block, EOS or not
        hypothesis.tokens.assign(history.begin(), history.end());
        if (!is_eos) hypothesis.tokens.push_back(candidate.token);
        hypothesis.score = candidate.score / normaliser;
        hypothesis.finished = is_eos;
        add_finished(sentence.finished, std::move(hypothesis), beam_size);
      }

      int64_t next_count = 0;
      sentence.next_beam_parent.clear();
      if (!at_max_length) {
        for (const Candidate& candidate : candidates) {
          if (ends_sentence(config, candidate.token)) continue;
          Beam& next_beam = sentence.next_beams[next_count++];
          const std::vector<int32_t>& history = sentence.beams[candidate.beam].tokens;
          next_beam.tokens.assign(history.begin(), history.end());
          next_beam.tokens.push_back(candidate.token);
          next_beam.score = candidate.score;
          sentence.next_beam_parent.push_back(static_cast<int32_t>(first_row + candidate.beam));
          if (next_count == beam_size) break;
        }
      }

      // Done when the length limit is reached, or when every finished slot is taken and the best
      // running beam, normalised at its current length, cannot beat the worst finished one.
      bool done = next_count == 0;
      if (!done && static_cast<int64_t>(sentence.finished.size()) == beam_size) {
        const float best_possible = sentence.next_beams.front().score / normaliser;
        done = best_possible <= sentence.finished.back().score;
      }
      if (done) {
        next_count = 0;
      } else {
        for (int64_t b = 0; b < next_count; ++b) {
          step_rows.add_next(sentence.next_beams[b].tokens.back(), s,
                             sentence.next_beam_parent[b]);
        }
      }
      sentence.beams.swap(sentence.next_beams);
      sentence.beam_count = next_count;
      first_row += beams;
    }
    step_rows.advance();
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
