#pragma once
// Greedy / temperature / top-k / top-p sampling with a per-request seeded RNG, so a request's
// tokens never depend on what else is in the batch.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "common/ids.h"

namespace prunekv {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax, lowest id wins ties)
  float top_p = 1.0f;        // nucleus mass, (0, 1]
  int32_t top_k = 0;         // 0 = whole vocabulary
  uint64_t seed = 0;
  void validate() const;     // throws InputError
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  TokenId sample(std::span<const float> logits);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, TokenId>> scratch_;
};

}  // namespace prunekv
