#include "scheduler/prune_forecast.h"

#include <algorithm>
#include <cmath>

namespace prunekv::detail {

void PruneForecast::observe(const std::string& policy, double kept_block_fraction) {
  History& h = by_policy_[policy];
  const double value = std::clamp(kept_block_fraction, 0.0, 1.0);
  if (h.ring.size() < kWindow) {
    h.ring.push_back(value);
  } else {
    h.ring[h.next] = value;
  }
  h.next = (h.next + 1) % kWindow;
  ++h.total;
  if (h.total < min_observations_) return;
  // Nearest-rank quantile, rounded up: with few observations it leans to the larger (more
  // careful) kept fraction.
  std::vector<double> sorted = h.ring;
  std::sort(sorted.begin(), sorted.end());
  const size_t rank = static_cast<size_t>(std::ceil(quantile_ * double(sorted.size())));
  h.prediction = sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

double PruneForecast::predicted_kept_fraction(const std::string& policy) const {
  auto it = by_policy_.find(policy);
  return it == by_policy_.end() ? 1.0 : it->second.prediction;
}

size_t PruneForecast::num_observations(const std::string& policy) const {
  auto it = by_policy_.find(policy);
  return it == by_policy_.end() ? 0 : it->second.total;
}

}  // namespace prunekv::detail
