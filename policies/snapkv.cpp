// `snapkv:R` (Li et al. 2024, "SnapKV: LLM Knows What You are Looking for Before Generation"),
// in its GQA form: the attention the last kObservationWindow prompt queries pay to each older
// token, summed over the query heads of a KV head's group and max-pooled (kernel 7) so that
// neighbours of a hit stay too, picks the older tokens each KV head keeps.
#include <fmt/format.h>

#include <algorithm>

#include "common/check.h"
#include "policies/policy_factories.h"
#include "policies/selection.h"
#include "policies/snapkv_select.h"

namespace prunekv::detail {

PrunePlan select_snapkv(const PruneView& view, std::span<const size_t> layer_budgets) {
  const KvLayout& layout = view.kv.layout();
  PKV_CHECK(layer_budgets.size() == layout.num_layers, "{} budgets for {} layers", layer_budgets.size(), layout.num_layers);
  PrunePlan plan;
  plan.block_rounded = false;
  const Pos window_first = view.prompt_len - kObservationWindow;
  for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
    const size_t budget = layer_budgets[layer];
    for (uint32_t kv_head = 0; kv_head < layout.num_kv_heads; ++kv_head) {
      const PromptSlots ps = prompt_slots(view.kv, layer, kv_head, view.prompt_len);
      if (ps.size() <= budget) continue;
      // Slots keep position order, so the window is a suffix of the prompt slots.
      const size_t window_begin = static_cast<size_t>(
          std::lower_bound(ps.positions.begin(), ps.positions.end(), window_first) - ps.positions.begin());
      const size_t window_size = ps.size() - window_begin;
      std::vector<bool> keep(ps.size(), false);
      for (size_t i = window_begin; i < ps.size(); ++i) keep[i] = true;
      if (budget > window_size) {
        std::vector<double> scores = group_stat_sum(view.kv, layer, kv_head, ps, SlotStat::kWindowSum);
        scores.resize(window_begin);  // only the older tokens compete, pooled among themselves
        const std::vector<double> pooled = max_pool_same(scores, kSnapKvPoolKernel);
        for (size_t i : top_k_indices(pooled, 0, window_begin, budget - window_size)) keep[i] = true;
      }
      add_head_keep(plan, view.kv, layer, kv_head, ps, keep);
    }
  }
  return plan;
}

namespace {

class SnapKvPolicy final : public PruningPolicy {
 public:
  explicit SnapKvPolicy(double keep_ratio) : keep_ratio_(keep_ratio) {}
  std::string name() const override { return fmt::format("snapkv:{:g}", keep_ratio_); }
  StatMask needed_stats() const override { return stat_bit(SlotStat::kWindowSum); }
  int32_t stats_window() const override { return kObservationWindow; }

  PrunePlan select(const PruneView& view) const override {
    const size_t budget = fixed_budget(keep_ratio_, view.prompt_len > 0 ? size_t(view.prompt_len) : 0);
    const std::vector<size_t> budgets(view.kv.layout().num_layers, budget);
    return select_snapkv(view, budgets);
  }

 private:
  double keep_ratio_;
};

}  // namespace

std::unique_ptr<PruningPolicy> make_snapkv_policy(double keep_ratio) {
  return std::make_unique<SnapKvPolicy>(keep_ratio);
}

}  // namespace prunekv::detail
