#pragma once
// Predicts, per pruning policy, the share of a request's prompt blocks that survive pruning:
// a conservative quantile of the kept block fractions observed so far (the last kWindow prunes),
// and 1.0 (no credit) until enough have been seen. Every observed prune corrects it.
// Engine thread only.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace prunekv::detail {

class PruneForecast {
 public:
  static constexpr size_t kWindow = 64;

  PruneForecast(double quantile, size_t min_observations) : quantile_(quantile), min_observations_(min_observations) {}

  // Records one prune's kept block fraction (in [0, 1]) for `policy`.
  void observe(const std::string& policy, double kept_block_fraction);
  // Predicted kept block fraction for `policy`, in [0, 1]; 1.0 without enough observations.
  double predicted_kept_fraction(const std::string& policy) const;
  size_t num_observations(const std::string& policy) const;

 private:
  struct History {
    std::vector<double> ring;  // at most kWindow, oldest overwritten
    size_t next = 0;
    size_t total = 0;
    double prediction = 1.0;  // cached: recomputed on observe, read every step
  };
  double quantile_;
  size_t min_observations_;
  std::map<std::string, History, std::less<>> by_policy_;
};

}  // namespace prunekv::detail
