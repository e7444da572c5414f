#include "decoding/beam_candidates.h"

#include <algorithm>

namespace pytransformer::decoding {

namespace {
bool better(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.beam != b.beam) return a.beam < b.beam;
  return a.token < b.token;
}

// The `count` best tokens of one row, best first (ties: lower id first), in one pass: a token is
// inserted into the short sorted list only when it beats the current last entry, whose score
// is kept in `threshold`. Once the list is full, a block of kSkipBlock tokens none of which
// beats it is skipped with one branch (the comparisons vectorise): nearly the whole vocabulary.
void best_tokens(const float* row, int64_t vocab, int64_t count, std::vector<int32_t>& best) {
  constexpr int64_t kSkipBlock = 16;
  best.clear();
  if (count <= 0) return;
  const size_t capacity = static_cast<size_t>(count);
  float threshold = 0.0f;
  int64_t token = 0;
  while (token < vocab) {
    if (best.size() == capacity && token + kSkipBlock <= vocab) {
      bool any_better = false;
      for (int64_t j = 0; j < kSkipBlock; ++j) any_better |= row[token + j] > threshold;
      if (!any_better) {
        token += kSkipBlock;
        continue;
      }
    }
    for (const int64_t end = std::min(vocab, token + kSkipBlock); token < end; ++token) {
      const float score = row[token];
      if (best.size() == capacity && !(score > threshold)) continue;
      auto position = best.end();
      while (position != best.begin() && score > row[*(position - 1)]) --position;
      best.insert(position, static_cast<int32_t>(token));
      if (best.size() > capacity) best.pop_back();
      threshold = row[best.back()];
    }
  }
}

}  // namespace

std::vector<Candidate>& CandidateSelector::best(const float* log_probs,
                                                const std::vector<float>& beam_scores,
                                                int64_t vocab, int64_t count) {
  const int64_t beams = static_cast<int64_t>(beam_scores.size());
  candidates_.clear();
  for (int64_t b = 0; b < beams; ++b) {
    // Only the best `count` tokens of a row can be among the best `count` candidates.
    const float* row = log_probs + b * vocab;
    best_tokens(row, vocab, count, row_best_);
    for (int32_t token : row_best_)
      candidates_.push_back({beam_scores[b] + row[token], static_cast<int32_t>(b), token});
  }
  const int64_t selected = std::min<int64_t>(count, candidates_.size());
  std::partial_sort(candidates_.begin(), candidates_.begin() + selected, candidates_.end(), better);
  candidates_.resize(selected);
  return candidates_;
}

}  // namespace pytransformer::decoding
