// Beam search with the conventions of CTranslate2's BeamSearch (patience 1, no coverage
// penalty, prefix returned): see docs/decoding.md.
#include <algorithm>
#include <cmath>

#include "decoding/beam_candidates.h"
#include "decoding/strategies.h"

namespace pytransformer::decoding {

namespace {

// Score CTranslate2 gives a secondary candidate it disables (during a forced prefix, and an EOS
// among the secondary candidates at the first free step after a prefix).
constexpr float kDisabledScore = -1e10f;

struct Beam {
  std::vector<int32_t> tokens;  // prefix and generated ids (capacity: max_length)
  float score = 0.0f;           // sum of log-probabilities (forced prefix tokens score 0)
};

// The beams live in two sets of beam_size slots whose token vectors keep their capacity:
// a step writes the next beams into next_beams, then the two sets swap, so no step allocates.
struct Sentence {
  std::vector<Beam> beams;       // the first beam_count are live: one at the first step
  int64_t beam_count = 1;
  std::vector<Beam> next_beams;  // being built by the current step
  std::vector<Hypothesis> hypotheses;  // registered in order, scores not yet normalised
  bool top_beam_finished = false;
};

}  // namespace

std::vector<SentenceResult> beam_search_ctranslate2(const models::EncoderDecoderModel& model,
                                                    const models::EncoderOutput& encoded,
                                                    const SubBatch& batch,
                                                    const SearchOptions& options,
                                                    DecodingHooks& hooks) {
  const auto& config = model.config();
  const int64_t beam_size = options.beam_size;
  const int64_t n_candidates = 2 * beam_size;
  const int64_t n_sentences = static_cast<int64_t>(batch.input_index.size());
  const LogitsProcessorList processors = model_processors(options, config);
  const float length_penalty = static_cast<float>(options.length_penalty);
  // Without a length penalty a sentence may stop as soon as its best beam has finished.
  const bool allow_early_exit = length_penalty == 0.0f;

  std::vector<Sentence> sentences(n_sentences);
  for (auto& sentence : sentences) {
    sentence.beams.resize(beam_size);
    sentence.next_beams.resize(beam_size);
    for (Beam& beam : sentence.beams) beam.tokens.reserve(options.max_length);
    for (Beam& beam : sentence.next_beams) beam.tokens.reserve(options.max_length);
  }

  const int64_t max_rows = n_sentences * beam_size;
  StepRunner runner(model, encoded, batch, max_rows, options.max_length);
  const int64_t vocab = runner.vocab();

  const std::vector<std::vector<int32_t>> repetition_context =
      repetition_contexts(options, config, encoded, batch);

  BeamRows step_rows(encoded, config, max_rows);
  std::vector<float> beam_scores;
  beam_scores.reserve(beam_size);
  CandidateSelector selector;

  for (int64_t step = 0; step < options.max_length && !step_rows.sentence.empty(); ++step) {
    if (hooks.between_steps && *hooks.between_steps) (*hooks.between_steps)();
    float* logits = runner.step(step_rows.tokens, step_rows.sentence, step_rows.parent);
    const bool last_step = step + 1 == options.max_length;

    for (size_t first_row = 0; first_row < step_rows.sentence.size();) {
      const int32_t s = step_rows.sentence[first_row];
      Sentence& sentence = sentences[s];
      const auto& prefix = batch.prefix[s];
      const int64_t prefix_length = static_cast<int64_t>(prefix.size());
      const int64_t beams = sentence.beam_count;
      float* rows = logits + first_row * vocab;

      beam_scores.resize(beams);
      for (int64_t b = 0; b < beams; ++b) {
        // CTranslate2 applies its repetition penalty and n-gram ban to the logits, before the
        // other processors and the log-softmax, over the decoder start token and each beam's
        // tokens (a language model: its prompt and them).
        const std::vector<int32_t>& history = sentence.beams[b].tokens;
        if (options.repetition_penalty != 1.0) {
          penalize_repetitions(rows + b * vocab, vocab, repetition_context[s], history,
                               options.repetition_penalty);
        }
        ban_repeated_ngrams(rows + b * vocab, models::start_token(encoded, config, s), history,
                            options.no_repeat_ngram_size);
        processors.apply(rows + b * vocab, vocab, step);
        log_softmax(rows + b * vocab, vocab);
        beam_scores[b] = sentence.beams[b].score;
      }
      std::vector<Candidate>& candidates = selector.best(rows, beam_scores, vocab, n_candidates);

      if (batch.request_has_prefix && step <= prefix_length) {
        for (size_t k = 0; k < candidates.size(); ++k) {
          Candidate& candidate = candidates[k];
          if (step < prefix_length) {
            candidate = {k == 0 ? 0.0f : kDisabledScore, 0, prefix[step]};
          } else if (k > 0 && ends_sentence(config, candidate.token)) {
            candidate = {kDisabledScore, 0, 0};
          }
        }
      }

      int64_t next_count = 0;
      size_t secondary = static_cast<size_t>(beam_size);
      for (int64_t k = 0; k < std::min<int64_t>(beam_size, candidates.size()); ++k) {
        const Candidate& candidate = candidates[k];
        size_t next = static_cast<size_t>(k);
        const bool is_eos = ends_sentence(config, candidate.token) && step >= prefix_length;
        if (is_eos || last_step) {
          if (k == 0) sentence.top_beam_finished = true;
          Hypothesis hypothesis;
          const std::vector<int32_t>& history = sentence.beams[candidate.beam].tokens;
          hypothesis.tokens.reserve(history.size() + 1);  // one block, EOS or not
          hypothesis.tokens.assign(history.begin(), history.end());
          if (!is_eos) hypothesis.tokens.push_back(candidate.token);
          hypothesis.score = candidate.score;
          hypothesis.finished = is_eos;
          sentence.hypotheses.push_back(std::move(hypothesis));
          // Continue this beam with the next secondary candidate that does not end.
          for (size_t j = secondary; j < candidates.size(); ++j) {
            if (!ends_sentence(config, candidates[j].token)) {
              next = j;
              secondary = j + 1;
              break;
            }
          }
        }
        const Candidate& continued = candidates[next];
        Beam& next_beam = sentence.next_beams[next_count++];
        const std::vector<int32_t>& history = sentence.beams[continued.beam].tokens;
        next_beam.tokens.assign(history.begin(), history.end());
        next_beam.tokens.push_back(continued.token);
        next_beam.score = continued.score;
        step_rows.add_next(continued.token, s, static_cast<int32_t>(first_row + continued.beam));
      }

      const int64_t registered = static_cast<int64_t>(sentence.hypotheses.size());
      bool finished;
      if (last_step)
        finished = true;
      else if (allow_early_exit)
        finished = sentence.top_beam_finished && registered >= options.n_best;
      else
        finished = registered >= beam_size;
      if (finished) {
        step_rows.drop_next(next_count);
        next_count = 0;
      }
      sentence.beams.swap(sentence.next_beams);
      sentence.beam_count = next_count;
      first_row += beams;
    }
    step_rows.advance();
  }

  std::vector<SentenceResult> results(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    auto& hypotheses = sentences[i].hypotheses;
    // CTranslate2 keeps the end token in its hypotheses until after this normalisation.
    for (Hypothesis& hypothesis : hypotheses)
      hypothesis.score /= std::pow(
          static_cast<float>(hypothesis.tokens.size() + (hypothesis.finished ? 1 : 0)),
          length_penalty);
    std::stable_sort(hypotheses.begin(), hypotheses.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(hypotheses.size()) > options.n_best) hypotheses.resize(options.n_best);
    results[i].hypotheses = std::move(hypotheses);
  }
  return results;
}

}  // namespace pytransformer::decoding
