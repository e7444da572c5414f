// The search strategies behind generate() (search.cpp), one sub-batch at a time. Internal to
// csrc/decoding/: generate() validates the options, sorts and splits the batch and encodes it.
//
// Each strategy decodes the sentences of `encoded` and returns one SentenceResult per sentence,
// in the order of `encoded`. Conventions (what is scored, counted and when a sentence stops)
// follow options.convention exactly as described in docs/decoding.md.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "decoding/logits_processors.h"
#include "decoding/search.h"
#include "models/encoder_decoder_model.h"

namespace pytransformer::decoding {

// The sentences of one sub-batch: sentence i of the encoded batch is input sentence
// input_index[i] and its target starts with prefix[i] (possibly empty).
struct SubBatch {
  std::vector<int64_t> input_index;
  std::vector<const std::vector<int32_t>*> sources;  // the source ids (a prompt) of each
  std::vector<std::vector<int32_t>> prefix;
  // Whether any sentence of the whole request has a target prefix (CTranslate2 then treats the
  // first free step of every sentence specially, see docs/decoding.md).
  bool request_has_prefix = false;
  // SearchOptions::allowed_ids of each sentence, ascending and unique with EOS, the stop ids
  // and the prefix added; empty: no shortlist.
  std::vector<std::vector<int32_t>> allowed;
  // Per sentence, the most tokens it may generate after its prefix: options.max_length, or
  // less under the marian convention's max_length_factor.
  std::vector<int64_t> max_length;
  // SearchOptions::constraints of each sentence (empty lists for a sub-batch without any).
  std::vector<std::vector<Constraint>> constraints;
  std::vector<uint8_t> whole_words;  // SearchOptions::whole_words of each sentence (or empty)
};

// What the caller observes between and after steps.
struct DecodingHooks {
  const TokenCallback* on_token = nullptr;           // greedy and sampling only
  const std::function<void()>* between_steps = nullptr;  // may throw to abort
  bool stopped = false;  // set once on_token returned false: every strategy then stops
};

std::vector<SentenceResult> greedy_search(const models::EncoderDecoderModel& model,
                                          const models::EncoderOutput& encoded,
                                          const SubBatch& batch, const SearchOptions& options,
                                          DecodingHooks& hooks);

std::vector<SentenceResult> beam_search_transformers(const models::EncoderDecoderModel& model,
                                                     const models::EncoderOutput& encoded,
                                                     const SubBatch& batch,
                                                     const SearchOptions& options,
                                                     DecodingHooks& hooks);

std::vector<SentenceResult> beam_search_ctranslate2(const models::EncoderDecoderModel& model,
                                                    const models::EncoderOutput& encoded,
                                                    const SubBatch& batch,
                                                    const SearchOptions& options,
                                                    DecodingHooks& hooks);

std::vector<SentenceResult> beam_search_marian(const models::EncoderDecoderModel& model,
                                               const models::EncoderOutput& encoded,
                                               const SubBatch& batch, const SearchOptions& options,
                                               DecodingHooks& hooks);

// Beam search that puts every constraint of each sentence in its translation (docs/decoding.md,
// *Constraints*); sentences of the sub-batch all have constraints.
std::vector<SentenceResult> beam_search_constrained(const models::EncoderDecoderModel& model,
                                                    const models::EncoderOutput& encoded,
                                                    const SubBatch& batch,
                                                    const SearchOptions& options,
                                                    DecodingHooks& hooks);

// The beam of a constrained sentence: the requested beam_size, widened to one more than its
// constraint tokens (dynamic beam allocation keeps a hypothesis per count of constraint tokens
// met, a constraint counting as many as its shortest form), at most kMaxConstrainedBeam.
constexpr int64_t kMaxConstrainedBeam = 16;
int64_t constrained_beam_width(const SearchOptions& options,
                               const std::vector<Constraint>& constraints);

// Marian's ranking of a finished hypothesis of `length` tokens, EOS included (History::add):
// (score - word_penalty * length) / length ^ length_penalty, in float as Marian computes it.
float marian_normalized_score(float score, int64_t length, const SearchOptions& options);

// Whether `token` ends a hypothesis: tokens.eos_id, or one of a language model's tokens.stop_ids
// (end-of-turn tokens), which count as its EOS.
inline bool ends_sentence(const format::ModelConfig& config, int32_t token) {
  if (token == config.eos_id) return true;
  for (const int64_t stop : config.stop_ids) {
    if (token == stop) return true;
  }
  return false;
}

// The processors every strategy applies to the model's scores (suppressed ids, min length,
// forced EOS, in the transformers order) and, for sampling, the warpers applied after them
// (temperature, top-k, top-p).
LogitsProcessorList model_processors(const SearchOptions& options,
                                     const format::ModelConfig& config);

// Per sentence of `batch`, what the repetition penalty sees before the generated tokens: a
// language model's prompt, a translation model's decoder start token; all empty when
// options.repetition_penalty is 1 (off).
std::vector<std::vector<int32_t>> repetition_contexts(const SearchOptions& options,
                                                      const format::ModelConfig& config,
                                                      const models::EncoderOutput& encoded,
                                                      const SubBatch& batch);
LogitsProcessorList sampling_warpers(const SearchOptions& options);

// One beam's row of scores as the log-probability beam searches (transformers, Marian,
// constrained) take it: log-softmax, then transformers' order: the repetition penalty over
// `context` and the beam's `history`, the n-gram ban after `start_token`, the processors.
void beam_log_probs(float* row, int64_t vocab, const SearchOptions& options,
                    const LogitsProcessorList& processors, const std::vector<int32_t>& context,
                    int32_t start_token, const std::vector<int32_t>& history, int64_t generated);

// The rows of a beam-search step (input token, sentence and parent row of each, as
// StepRunner::step takes them) and the rows of the next step being built: add_next() appends
// one, drop_next(count) removes the last `count`, advance() makes them current. Reserved once
// for max_rows; the first step has one row per sentence of `encoded`, starting from its start
// token (models::start_token).
struct BeamRows {
  BeamRows(const models::EncoderOutput& encoded, const format::ModelConfig& config,
           int64_t max_rows);
  void add_next(int32_t token, int32_t row_sentence, int32_t row_parent);
  void drop_next(int64_t count);
  void advance();

  std::vector<int32_t> tokens, sentence, parent;
  std::vector<int32_t> next_tokens, next_sentence, next_parent;
};

// One decoding loop over the model: owns the cache and the logits of the current step.
class StepRunner {
 public:
  // With a shortlist (batch.allowed), the model's output layer is restricted to the union of
  // the sentences' lists where it can be, and step() masks what remains outside each row's own.
  StepRunner(const models::EncoderDecoderModel& model, const models::EncoderOutput& encoded,
             const SubBatch& batch, int64_t max_hypotheses, int64_t max_steps);
  ~StepRunner();

  // Runs one decoder step (see EncoderDecoderModel::decode_step) and returns the logits
  // [tokens.size(), vocab()], writable, valid until the next call: -infinity for the ids the
  // row's sentence may not generate.
  float* step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& sentence,
              const std::vector<int32_t>& parent);
  int64_t vocab() const { return vocab_; }

 private:
  const models::EncoderDecoderModel& model_;
  std::unique_ptr<models::DecoderState> state_;
  int64_t vocab_;
  std::vector<float> logits_;
  // Shortlist: per sentence, the ids to mask after each step (outside its own list: those of
  // the union only where the model restricted its output to the union, else all of them).
  std::vector<std::vector<int32_t>> masked_;
};

}  // namespace pytransformer::decoding
