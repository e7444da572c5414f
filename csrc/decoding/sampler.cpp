#include "decoding/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace pytransformer::decoding {

namespace {
// splitmix64 finaliser: spreads (seed, stream) over the engine's seed space.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

TokenSampler::TokenSampler(uint64_t seed, uint64_t stream) : engine_(mix(mix(seed) ^ stream)) {}

double TokenSampler::uniform() { return double(engine_() >> 11) * 0x1.0p-53; }

int64_t TokenSampler::sample(const float* scores, int64_t vocab) {
  const float best = *std::max_element(scores, scores + vocab);
  thread_local std::vector<double> cumulative;  // per thread, kept: no allocation per draw
  cumulative.resize(static_cast<size_t>(vocab));
  double total = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    total += std::exp(double(scores[i]) - best);
    cumulative[i] = total;
  }
  const double target = uniform() * total;
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), target);
  int64_t index = std::min<int64_t>(it - cumulative.begin(), vocab - 1);
  // Rounding can land on a forbidden token after the last allowed one: step back.
  while (index > 0 && scores[index] == -std::numeric_limits<float>::infinity()) --index;
  return index;
}

}  // namespace pytransformer::decoding
