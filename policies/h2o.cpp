// `h2o:R` (Heavy-Hitter Oracle), one-shot after prefill: per (layer, KV head) keep the recent
// half of the budget plus the heavy hitters, the older prompt tokens with the most attention
// accumulated over every prompt query, summed over the query heads of the KV head's group.
#include <fmt/format.h>

#include "policies/policy_factories.h"
#include "policies/selection.h"

namespace prunekv::detail {
namespace {

class H2oPolicy final : public PruningPolicy {
 public:
  explicit H2oPolicy(double keep_ratio) : keep_ratio_(keep_ratio) {}
  std::string name() const override { return fmt::format("h2o:{:g}", keep_ratio_); }
  StatMask needed_stats() const override { return stat_bit(SlotStat::kAccumulated); }

  PrunePlan select(const PruneView& view) const override {
    PrunePlan plan;
    plan.block_rounded = false;
    const KvLayout& layout = view.kv.layout();
    const size_t budget = fixed_budget(keep_ratio_, view.prompt_len > 0 ? size_t(view.prompt_len) : 0);
    // H2O splits its cache evenly; the odd token goes to the heavy hitters.
    const size_t num_recent = budget / 2;
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      for (uint32_t kv_head = 0; kv_head < layout.num_kv_heads; ++kv_head) {
        const PromptSlots ps = prompt_slots(view.kv, layer, kv_head, view.prompt_len);
        if (ps.size() <= budget) continue;
        const std::vector<double> scores = group_stat_sum(view.kv, layer, kv_head, ps, SlotStat::kAccumulated);
        const size_t recent_begin = ps.size() - num_recent;
        std::vector<bool> keep(ps.size(), false);
        for (size_t i = recent_begin; i < ps.size(); ++i) keep[i] = true;
        for (size_t i : top_k_indices(scores, 0, recent_begin, budget - num_recent)) keep[i] = true;
        add_head_keep(plan, view.kv, layer, kv_head, ps, keep);
      }
    }
    return plan;
  }

 private:
  double keep_ratio_;
};

}  // namespace

std::unique_ptr<PruningPolicy> make_h2o_policy(double keep_ratio) { return std::make_unique<H2oPolicy>(keep_ratio); }

}  // namespace prunekv::detail
