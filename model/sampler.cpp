#include "model/sampler.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/check.h"
#include "common/error.h"

namespace prunekv {

void SamplingParams::validate() const {
  // Written as !(ok) so NaN fails too.
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    throw InputError(fmt::format("sampling: temperature = {}, expected a finite value >= 0", temperature));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    throw InputError(fmt::format("sampling: top_p = {}, expected a value in (0, 1]", top_p));
  }
  if (top_k < 0) {
    throw InputError(fmt::format("sampling: top_k = {}, expected >= 0 (0 = whole vocabulary)", top_k));
  }
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  params_.validate();
}

namespace {

TokenId argmax(std::span<const float> logits) {
  // Strict > keeps the lowest id among equal maxima.
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<TokenId>(best);
}

// A uniform double in [0, 1) from the top 53 bits: the same value on every standard library,
// unlike std::uniform_real_distribution, so seeded outputs are portable.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

TokenId Sampler::sample(std::span<const float> logits) {
  PKV_CHECK(!logits.empty(), "sampling from an empty logits row");
  if (params_.temperature == 0.0f || params_.top_k == 1) return argmax(logits);

  // Candidates ordered by logit (descending), ties by id, so the order is deterministic.
  scratch_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) scratch_[i] = {logits[i], static_cast<TokenId>(i)};
  const auto higher = [](const std::pair<float, TokenId>& a, const std::pair<float, TokenId>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  size_t num_candidates = logits.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < num_candidates) {
    num_candidates = static_cast<size_t>(params_.top_k);
    std::partial_sort(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(num_candidates),
                      scratch_.end(), higher);
  } else {
    std::sort(scratch_.begin(), scratch_.end(), higher);
  }

  // Softmax of logit / temperature over the candidates, in double (the tail of a 32k vocabulary
  // sums many tiny values).
  const double inv_temperature = 1.0 / static_cast<double>(params_.temperature);
  const double max_logit = scratch_[0].first;
  double total = 0.0;
  for (size_t i = 0; i < num_candidates; ++i) {
    const double p = std::exp((scratch_[i].first - max_logit) * inv_temperature);
    scratch_[i].first = static_cast<float>(p);
    total += scratch_[i].first;  // the stored value, so the scan below sums to exactly total
  }

  // Nucleus: the smallest prefix whose mass reaches top_p (at least one token).
  if (params_.top_p < 1.0f) {
    const double target = static_cast<double>(params_.top_p) * total;
    double mass = 0.0;
    size_t keep = 0;
    while (keep < num_candidates) {
      mass += scratch_[keep].first;
      ++keep;
      if (mass >= target) break;
    }
    num_candidates = keep;
    total = mass;
  }

  const double r = uniform01(rng_) * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < num_candidates; ++i) {
    cumulative += scratch_[i].first;
    if (r < cumulative) return scratch_[i].second;
  }
  return scratch_[num_candidates - 1].second;  // r within rounding of total
}

}  // namespace prunekv
