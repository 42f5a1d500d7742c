// `streaming:R` (StreamingLLM): every layer keeps the 4 attention sinks and the most recent
// prompt tokens up to the budget. The evicted positions form one interval per layer, cut
// token-exact (compaction) so the kept fraction is the budget R, not R rounded up to blocks.
#include <fmt/format.h>

#include "policies/policy_factories.h"
#include "policies/selection.h"

namespace prunekv::detail {
namespace {

class StreamingPolicy final : public PruningPolicy {
 public:
  explicit StreamingPolicy(double keep_ratio) : keep_ratio_(keep_ratio) {}
  std::string name() const override { return fmt::format("streaming:{:g}", keep_ratio_); }

  PrunePlan select(const PruneView& view) const override {
    PrunePlan plan;
    plan.block_rounded = false;
    const size_t n = view.prompt_len > 0 ? size_t(view.prompt_len) : 0;
    const size_t budget = fixed_budget(keep_ratio_, n);
    if (budget >= n) return plan;
    // budget >= sinks + window, so the interval is never empty of kept recent tokens.
    const size_t num_recent = budget - size_t{kNumSinkTokens};
    const Pos last_evicted = static_cast<Pos>(n - num_recent - 1);
    for (uint32_t layer = 0; layer < view.kv.layout().num_layers; ++layer) {
      plan.cuts.push_back({layer, kNumSinkTokens, last_evicted});
    }
    return plan;
  }

 private:
  double keep_ratio_;
};

}  // namespace

std::unique_ptr<PruningPolicy> make_streaming_policy(double keep_ratio) {
  return std::make_unique<StreamingPolicy>(keep_ratio);
}

}  // namespace prunekv::detail
