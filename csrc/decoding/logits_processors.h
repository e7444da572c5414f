// Logits processors: small composable pieces that rewrite one row of next-token scores before a
// search strategy chooses tokens. Each acts in place on `scores[vocab]` (raw logits or
// log-probabilities, depending on the convention: docs/decoding.md) and sets what it forbids to
// -infinity. `generated` is the number of target tokens already produced by the hypothesis, counted
// as the convention counts them (after the target prefix for transformers, including it for
// ctranslate2).
//
// Processors are immutable after construction and may be shared by threads. Those that need
// working memory (TopK, TopP) keep a buffer per thread, so apply() allocates nothing once the
// buffer has reached the vocabulary size.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace pytransformer::decoding {

class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  virtual void apply(float* scores, int64_t vocab, int64_t generated) const = 0;
};

// Applies its processors in order.
class LogitsProcessorList {
 public:
  void add(std::unique_ptr<LogitsProcessor> processor);
  bool empty() const { return processors_.empty(); }
  void apply(float* scores, int64_t vocab, int64_t generated) const;

 private:
  std::vector<std::unique_ptr<LogitsProcessor>> processors_;
};

// Never generate these ids.
class SuppressTokens : public LogitsProcessor {
 public:
  explicit SuppressTokens(std::vector<int64_t> ids);
  void apply(float* scores, int64_t vocab, int64_t generated) const override;

 private:
  std::vector<int64_t> ids_;
};

// Forbid `eos` while fewer than `min_length` tokens have been generated.
class MinLength : public LogitsProcessor {
 public:
  MinLength(int64_t eos, int64_t min_length);
  void apply(float* scores, int64_t vocab, int64_t generated) const override;

 private:
  int64_t eos_;
  int64_t min_length_;
};

// When the next token is the last one allowed (`generated == max_length - 1`), allow only `eos`
// and give it the score 0 (probability 1).
class ForcedEos : public LogitsProcessor {
 public:
  ForcedEos(int64_t eos, int64_t max_length);
  void apply(float* scores, int64_t vocab, int64_t generated) const override;

 private:
  int64_t eos_;
  int64_t max_length_;
};

// Divide every score by `temperature` (> 0).
class Temperature : public LogitsProcessor {
 public:
  explicit Temperature(double temperature);
  void apply(float* scores, int64_t vocab, int64_t generated) const override;

 private:
  float temperature_;
};

// Keep the `k` best scores (and any tied with the k-th), forbid the rest.
class TopK : public LogitsProcessor {
 public:
  explicit TopK(int64_t k);
  void apply(float* scores, int64_t vocab, int64_t generated) const override;

 private:
  int64_t k_;
};

// Keep the smallest set of best tokens whose probabilities (softmax of the scores) sum to at
// least `p`; always keeps the best token.
class TopP : public LogitsProcessor {
 public:
  explicit TopP(double p);
  void apply(float* scores, int64_t vocab, int64_t generated) const override;

 private:
  double p_;
};

// transformers' MinPLogitsWarper: forbid every token whose probability (softmax of the scores)
// is below `min_p` times the best token's; always keeps the best token. min_p in (0, 1].
class MinP : public LogitsProcessor {
 public:
  explicit MinP(double min_p);
  void apply(float* scores, int64_t vocab, int64_t generated) const override;

 private:
  double min_p_;
};

// transformers' RepetitionPenaltyLogitsProcessor: every id that occurs in `context` or
// `history` gets its score divided by `penalty` where positive, multiplied where negative (each
// id once). context: a language model's prompt, or the decoder start token; history: the
// tokens generated so far.
void penalize_repetitions(float* scores, int64_t vocab, const std::vector<int32_t>& context,
                          const std::vector<int32_t>& history, double penalty);

// transformers' NoRepeatNGramLogitsProcessor: sets to -infinity every token that would complete
// an n-gram (n = `size`) already in `start_token` + `history` (the hypothesis' tokens after the
// decoder start, a target prefix included). size 0: nothing.
void ban_repeated_ngrams(float* scores, int32_t start_token, const std::vector<int32_t>& history,
                         int64_t size);

// In-place log-softmax of one row; a row of only -infinity stays so.
void log_softmax(float* scores, int64_t vocab);

// Index of the largest score; the lowest index wins ties.
int64_t argmax(const float* scores, int64_t vocab);

}  // namespace pytransformer::decoding
