// Search strategies over an EncoderDecoderModel (the CPU Seq2SeqModel or the CUDA backend's
// model): greedy, beam search and sampling. The model gives logits; this layer applies logits
// processors (suppressed ids, min length, forced EOS, temperature, top-k, top-p) and chooses
// tokens, following the conventions of the reference implementation named by
// SearchOptions::convention (docs/decoding.md) so outputs are
// token-identical to it.
//
// Batching: sentences are sorted by length internally and split into sub-batches; results come
// back in input order; finished sentences leave the active batch.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "format/model_config.h"
#include "models/encoder_decoder_model.h"

namespace pytransformer::decoding {

// The forms of one lexical constraint: token sequences, any one of which meets it.
using Constraint = std::vector<std::vector<int32_t>>;

struct SearchOptions {
  int64_t beam_size = 1;
  int64_t n_best = 1;            // <= beam_size
  int64_t max_length = 256;      // generated tokens, not counting the decoder start token
  int64_t min_length = 0;        // EOS is suppressed before this many generated tokens
  double length_penalty = 1.0;
  std::vector<int64_t> suppressed_ids;
  bool forced_eos = false;       // force EOS as the token that reaches max_length
  // transformers beam search only: renormalise the log-probabilities after the processors
  // (transformers' renormalize_logits; ctranslate2 always does, by masking before log-softmax).
  bool renormalize_logits = false;
  // transformers convention only: no n-gram of this size occurs twice in a hypothesis (the
  // decoder start token counts as its first token, as in transformers' NoRepeatNGram). 0: off.
  int64_t no_repeat_ngram_size = 0;
  // marian convention only: sentence i generates at most ceil(max_length_factor * its source
  // length, EOS included) tokens (and never more than max_length), as Marian's
  // max-length-factor limits a batch by its widest source: here each sentence by its own, as
  // when Marian translates it alone. 0: off.
  double max_length_factor = 0.0;
  // marian convention only: a finished hypothesis of n tokens (EOS included) is ranked by
  // (score - word_penalty * n) / n ^ length_penalty (Marian's --word-penalty).
  double word_penalty = 0.0;
  format::SearchConvention convention = format::SearchConvention::TRANSFORMERS;
  // Sampling (beam_size must be 1). temperature 0 or sampling=false means greedy.
  bool sampling = false;
  double temperature = 1.0;
  int64_t top_k = 0;             // 0: no top-k filter
  double top_p = 1.0;            // 1: no nucleus filter
  double min_p = 0.0;            // 0: no min-p filter (tokens below min_p * the best's probability)
  // transformers' repetition_penalty (greedy and sampling): scores of tokens already in the
  // prompt (the decoder start token for a translation model) or generated are divided by it
  // where positive, multiplied where negative. 1: off.
  double repetition_penalty = 1.0;
  uint64_t seed = 0;
  // Optional forced start of each target (one per sentence, or empty).
  std::vector<std::vector<int32_t>> target_prefix;
  // transformers beam search only: the prefix counts as generated in the length normalisation
  // of beam scores (score / (prefix + generated) ^ length_penalty), as transformers counts a
  // token forced by forced_bos_token_id (NLLB / M2M100's target language). false: it is a
  // given prefix, not counted (decoder_input_ids).
  bool count_prefix = false;
  // Optional vocabulary shortlist (one list per sentence, or empty): sentence i may generate
  // only the ids of allowed_ids[i] (any order; EOS, the stop ids and its target prefix are
  // always allowed). Its scores are normalised over those ids, as Marian's output layer
  // restricted to a shortlist: the logits of every other id are -infinity before any
  // processor. The model computes the output layer only for the union of a sub-batch's lists
  // where it can (EncoderDecoderModel::restrict_output); the tokens and scores are the same
  // either way, and do not depend on the other sentences of the call.
  std::vector<std::vector<int32_t>> allowed_ids;
  // Optional lexical constraints (one list per sentence, or empty): each constraint of
  // constraints[i] appears in sentence i's translation in one of its forms (token sequences:
  // a glossary term, a protected span, with and without a word-boundary piece), found by
  // constrained beam search (docs/decoding.md, *Constraints*); a sentence with an empty list
  // is decoded as without constraints. Not with sampling or a token callback.
  std::vector<std::vector<Constraint>> constraints;
  // With constraints: the target ids that continue the word before them (pieces without a
  // word-start mark), and per sentence (or empty: none) whether its constraints are whole
  // words (a language written with spaces): then none of those ids may follow the last token
  // of a constraint, so a required word stays that word ("comment", not "comments").
  std::vector<int32_t> word_continuations;
  std::vector<uint8_t> whole_words;
  int64_t max_batch_tokens = 0;  // 0: no limit on source tokens per sub-batch

  // The defaults recorded in the model file (generation.*).
  static SearchOptions from_config(const format::ModelConfig& config);
};

struct Hypothesis {
  std::vector<int32_t> tokens;  // generated ids, without the decoder start token and final EOS
  double score = 0.0;           // as the reference reports it (length-normalised for beams)
  bool finished = false;        // ended with EOS (false: stopped by max_length or a callback)
};

struct SentenceResult {
  std::vector<Hypothesis> hypotheses;  // n_best, best first
};

// Called after each step of greedy/sampling decoding with the token chosen for a sentence
// (in input order). Return false to stop decoding all sentences now; results then hold the
// tokens produced so far. May throw to abort (the exception propagates out of generate()).
// Tokens of a forced target prefix are not reported; the EOS that ends a sentence is. Requires
// beam_size 1 and n_best 1 (InvalidArgument otherwise).
using TokenCallback = std::function<bool(int64_t sentence, int32_t token)>;

// Decodes every sentence; throws InvalidArgument for options the model cannot honour.
// `between_steps`, if set, is called before every decoder step and may throw to abort (the
// Python binding checks for Ctrl-C there).
std::vector<SentenceResult> generate(const models::EncoderDecoderModel& model,
                                     const std::vector<std::vector<int32_t>>& source_ids,
                                     const SearchOptions& options,
                                     const TokenCallback& on_token = nullptr,
                                     const std::function<void()>& between_steps = nullptr);

}  // namespace pytransformer::decoding
