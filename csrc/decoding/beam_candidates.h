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

// The `count` best (beam, token) pairs of `beam_scores[b] + log_probs[b][token]` over the rows
// `log_probs + b * vocab` for b < beams, best first; ties go to the lower flattened index
// b * vocab + token (the order of a flattened top-k). Accumulates in float like the references.
std::vector<Candidate> best_candidates(const float* log_probs, const std::vector<float>& beam_scores,
                                       int64_t vocab, int64_t count);

}  // namespace pytransformer::decoding
