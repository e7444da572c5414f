#include "decoding/logits_processors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "ops/log_softmax.h"

namespace pytransformer::decoding {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}  // namespace

void LogitsProcessorList::add(std::unique_ptr<LogitsProcessor> processor) {
  processors_.push_back(std::move(processor));
}

void LogitsProcessorList::apply(float* scores, int64_t vocab, int64_t generated) const {
  for (const auto& processor : processors_) processor->apply(scores, vocab, generated);
}

SuppressTokens::SuppressTokens(std::vector<int64_t> ids) : ids_(std::move(ids)) {}

void SuppressTokens::apply(float* scores, int64_t vocab, int64_t) const {
  for (int64_t id : ids_)
    if (id >= 0 && id < vocab) scores[id] = kNegInf;
}

MinLength::MinLength(int64_t eos, int64_t min_length) : eos_(eos), min_length_(min_length) {}

void MinLength::apply(float* scores, int64_t vocab, int64_t generated) const {
  if (generated < min_length_ && eos_ < vocab) scores[eos_] = kNegInf;
}

ForcedEos::ForcedEos(int64_t eos, int64_t max_length) : eos_(eos), max_length_(max_length) {}

void ForcedEos::apply(float* scores, int64_t vocab, int64_t generated) const {
  if (generated != max_length_ - 1) return;
  std::fill(scores, scores + vocab, kNegInf);
  if (eos_ < vocab) scores[eos_] = 0.0f;
}

Temperature::Temperature(double temperature) : temperature_(static_cast<float>(temperature)) {}

void Temperature::apply(float* scores, int64_t vocab, int64_t) const {
  for (int64_t i = 0; i < vocab; ++i) scores[i] /= temperature_;
}

TopK::TopK(int64_t k) : k_(k) {}

void TopK::apply(float* scores, int64_t vocab, int64_t) const {
  if (k_ <= 0 || k_ >= vocab) return;
  thread_local std::vector<float> sorted;  // per thread: the processor is shared and const
  sorted.assign(scores, scores + vocab);
  std::nth_element(sorted.begin(), sorted.begin() + (k_ - 1), sorted.end(), std::greater<float>());
  const float threshold = sorted[k_ - 1];
  for (int64_t i = 0; i < vocab; ++i)
    if (scores[i] < threshold) scores[i] = kNegInf;
}

TopP::TopP(double p) : p_(p) {}

void TopP::apply(float* scores, int64_t vocab, int64_t) const {
  if (p_ >= 1.0 || vocab == 0) return;
  thread_local std::vector<int64_t> order;  // per thread: the processor is shared and const
  order.resize(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  // Best first, ties by id: the order of a stable sort, without its temporary buffer.
  std::sort(order.begin(), order.end(), [scores](int64_t a, int64_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  const float best = scores[order[0]];
  if (best == kNegInf) return;
  double total = 0.0;
  for (int64_t i = 0; i < vocab; ++i) total += std::exp(double(scores[i]) - best);
  // Walk from the best token down; once the kept mass reaches p, forbid the rest.
  double kept = 0.0;
  int64_t keep = 0;
  while (keep < vocab && kept < p_) {
    kept += std::exp(double(scores[order[keep]]) - best) / total;
    ++keep;
  }
  for (int64_t i = std::max<int64_t>(keep, 1); i < vocab; ++i) scores[order[i]] = kNegInf;
}

MinP::MinP(double min_p) : min_p_(min_p) {}

void MinP::apply(float* scores, int64_t vocab, int64_t) const {
  if (min_p_ <= 0.0 || vocab == 0) return;
  const float best = scores[argmax(scores, vocab)];
  if (best == kNegInf) return;
  // p_i / p_best = exp(s_i - s_best); the best token itself (ratio 1) always stays.
  for (int64_t i = 0; i < vocab; ++i) {
    if (std::exp(double(scores[i]) - best) < min_p_) scores[i] = kNegInf;
  }
}

void penalize_repetitions(float* scores, int64_t vocab, const std::vector<int32_t>& context,
                          const std::vector<int32_t>& history, double penalty) {
  if (penalty == 1.0) return;
  thread_local std::vector<int32_t> ids;  // per thread; grows to the longest context once
  ids.assign(context.begin(), context.end());
  ids.insert(ids.end(), history.begin(), history.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const float factor = static_cast<float>(penalty);
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab) continue;
    float& score = scores[id];
    score = score < 0.0f ? score * factor : score / factor;
  }
}

void ban_repeated_ngrams(float* scores, int32_t start_token, const std::vector<int32_t>& history,
                         int64_t size) {
  // The sequence transformers sees: the decoder start token, then the history.
  const int64_t length = static_cast<int64_t>(history.size()) + 1;
  if (size <= 0 || length + 1 < size) return;
  const auto token = [&](int64_t i) { return i == 0 ? start_token : history[i - 1]; };
  // The n-1 tokens an n-gram would continue: the last n-1 of the sequence.
  const int64_t tail = length - (size - 1);
  for (int64_t start = 0; start + size <= length; ++start) {
    bool same = true;
    for (int64_t k = 0; k < size - 1 && same; ++k) same = token(start + k) == token(tail + k);
    if (same) scores[token(start + size - 1)] = kNegInf;
  }
}

void log_softmax(float* scores, int64_t vocab) { ops::log_softmax(scores, 1, vocab); }

int64_t argmax(const float* scores, int64_t vocab) { return ops::argmax(scores, vocab); }

}  // namespace pytransformer::decoding
