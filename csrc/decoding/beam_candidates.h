// Selection of the best continuations of a set of beams, shared by both beam searches.
#pragma once

#include <cstdint>
#include <vector>

namespace pytransformer::decoding {

struct Candidate {
  float score = 0.0f;  // accumulated log-probability of the beam extended by `token`
  int32_t beam = 0;    // index of the extended beam among the sentence's beams
  int32_t token = 0;
};

// Chooses candidates with buffers kept across calls: a beam search keeps one selector for its
// whole loop, which then allocates nothing once the buffers have reached their largest size.
class CandidateSelector {
 public:
  // The `count` best (beam, token) pairs of `beam_scores[b] + log_probs[b][token]` over the
  // rows `log_probs + b * vocab` for b < beams, best first; ties go to the lower flattened
  // index b * vocab + token (the order of a flattened top-k). Accumulates in float like the
  // references. The result is the selector's buffer: the caller may edit it; the next call
  // overwrites it.
  std::vector<Candidate>& best(const float* log_probs, const std::vector<float>& beam_scores,
                               int64_t vocab, int64_t count);

 private:
  std::vector<Candidate> candidates_;
  std::vector<int32_t> row_best_;  // the best tokens of one row
};

}  // namespace pytransformer::decoding
