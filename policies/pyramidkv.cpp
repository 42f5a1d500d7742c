// `pyramidkv:R` (Cai et al. 2024, "PyramidKV: Dynamic KV Cache Compression based on Pyramidal
// Information Funneling"): SnapKV's selection with budgets that shrink linearly with depth,
// since lower layers spread their attention widely and upper layers focus on a few tokens.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "policies/policy_factories.h"
#include "policies/selection.h"
#include "policies/snapkv_select.h"

namespace prunekv::detail {

std::vector<size_t> pyramid_layer_budgets(double keep_ratio, size_t n, uint32_t num_layers) {
  PKV_CHECK(num_layers > 0, "no layers");
  const double target_total = double(fixed_budget(keep_ratio, n)) * num_layers;
  std::vector<double> weight(num_layers, 1.0);
  if (num_layers > 1) {
    for (uint32_t l = 0; l < num_layers; ++l) weight[l] = 1.5 - double(l) / double(num_layers - 1);
  }
  // Water-filling: each round caps the layers whose share reaches n and hands their excess to
  // the rest; at most num_layers rounds.
  std::vector<double> share(num_layers, 0.0);
  std::vector<bool> capped(num_layers, false);
  for (uint32_t round = 0; round < num_layers; ++round) {
    double left = target_total, left_weight = 0.0;
    for (uint32_t l = 0; l < num_layers; ++l) {
      if (capped[l]) left -= double(n);
      else left_weight += weight[l];
    }
    if (left_weight <= 0.0) break;
    bool newly_capped = false;
    for (uint32_t l = 0; l < num_layers; ++l) {
      if (capped[l]) continue;
      share[l] = left * weight[l] / left_weight;
      if (share[l] >= double(n)) capped[l] = newly_capped = true;
    }
    if (!newly_capped) break;
  }
  const size_t floor_budget = std::min(n, size_t{kNumSinkTokens} + size_t{kObservationWindow});
  std::vector<size_t> budgets(num_layers);
  for (uint32_t l = 0; l < num_layers; ++l) {
    const double wanted = capped[l] ? double(n) : std::ceil(share[l] - 1e-9);
    budgets[l] = std::clamp(static_cast<size_t>(std::max(wanted, 0.0)), floor_budget, n);
  }
  return budgets;
}

namespace {

class PyramidKvPolicy final : public PruningPolicy {
 public:
  explicit PyramidKvPolicy(double keep_ratio) : keep_ratio_(keep_ratio) {}
  std::string name() const override { return fmt::format("pyramidkv:{:g}", keep_ratio_); }
  StatMask needed_stats() const override { return stat_bit(SlotStat::kWindowSum); }
  int32_t stats_window() const override { return kObservationWindow; }

  PrunePlan select(const PruneView& view) const override {
    const size_t n = view.prompt_len > 0 ? size_t(view.prompt_len) : 0;
    return select_snapkv(view, pyramid_layer_budgets(keep_ratio_, n, view.kv.layout().num_layers));
  }

 private:
  double keep_ratio_;
};

}  // namespace

std::unique_ptr<PruningPolicy> make_pyramidkv_policy(double keep_ratio) {
  return std::make_unique<PyramidKvPolicy>(keep_ratio);
}

}  // namespace prunekv::detail
