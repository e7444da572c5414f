// Random choice of a token from a row of scores, reproducible for a seed on every platform
// (a 64-bit Mersenne Twister and our own uniform and categorical draws, not the standard
// library's distributions, whose algorithms vary between implementations).
#pragma once

#include <cstdint>
#include <random>

namespace pytransformer::decoding {

class TokenSampler {
 public:
  // One independent stream per (seed, stream): a sentence's samples do not depend on the
  // other sentences decoded with it or on how the batch was split.
  TokenSampler(uint64_t seed, uint64_t stream);

  // Draws an index with probability softmax(scores)[index]; -infinity scores are never drawn.
  // At least one score must be finite.
  int64_t sample(const float* scores, int64_t vocab);

 private:
  double uniform();  // in [0, 1)
  std::mt19937_64 engine_;
};

}  // namespace pytransformer::decoding
