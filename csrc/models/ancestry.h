// The ancestry table of a decoding loop (docs/architecture.md, "The decoder cache"):
// table[h * max_steps + s] is the cache row of hypothesis h's ancestor at step s.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace pytransformer::models {

// next = the table after step t: hypothesis h < n inherits parent[h]'s rows of steps < t from
// `current` and owns row h at step t. Both tables: [max_hypotheses * max_steps]; parent: [n],
// read only when t > 0 (arguments already checked by check_step).
inline void extend_ancestry(const std::vector<int32_t>& current, const int32_t* parent, int64_t n,
                            int64_t t, int64_t max_steps, std::vector<int32_t>& next) {
  for (int64_t h = 0; h < n; ++h) {
    int32_t* row = next.data() + h * max_steps;
    if (t > 0) std::memcpy(row, current.data() + parent[h] * max_steps, sizeof(int32_t) * t);
    row[t] = static_cast<int32_t>(h);
  }
}

}  // namespace pytransformer::models
