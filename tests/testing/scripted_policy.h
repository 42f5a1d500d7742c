#pragma once
// A PruningPolicy for scheduler tests whose kept block fraction is scripted: the i-th prune
// keeps fractions[i] (the last one repeats) of each list's prompt blocks, evicting the oldest
// whole blocks through drop_range. Thread-safe (the engine prunes in parallel).
#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "policies/pruning_policy.h"

namespace prunekv::testing {

class ScriptedPolicy : public PruningPolicy {
 public:
  explicit ScriptedPolicy(std::vector<double> fractions, std::string name = "scripted")
      : fractions_(std::move(fractions)), name_(std::move(name)) {}

  std::string name() const override { return name_; }
  PrunePlan select(const PruneView& view) const override {
    const size_t i = num_selects_.fetch_add(1);
    const double kept = fractions_.empty() ? 1.0 : fractions_[std::min(i, fractions_.size() - 1)];
    const KvLayout& layout = view.kv.layout();
    const size_t prompt_blocks = layout.blocks_for_slots(size_t(view.prompt_len));
    const auto evicted = static_cast<size_t>(std::llround(double(prompt_blocks) * (1.0 - kept)));
    PrunePlan plan;
    if (evicted == 0) return plan;
    const Pos last = std::min<Pos>(Pos(evicted * layout.block_size) - 1, view.prompt_len - 1);
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) plan.cuts.push_back({layer, 0, last});
    return plan;
  }
  size_t num_selects() const { return num_selects_.load(); }

 private:
  std::vector<double> fractions_;
  std::string name_;
  mutable std::atomic<size_t> num_selects_{0};
};

// An EngineConfig::policy_factory that hands out `policy` for the spec "scripted" and the real
// policies otherwise. The policy must outlive the engine.
inline auto scripted_factory(const ScriptedPolicy& policy) {
  struct Forward : PruningPolicy {
    const ScriptedPolicy* p;
    explicit Forward(const ScriptedPolicy* q) : p(q) {}
    std::string name() const override { return p->name(); }
    PrunePlan select(const PruneView& view) const override { return p->select(view); }
  };
  return [&policy](std::string_view spec) -> std::unique_ptr<PruningPolicy> {
    if (spec == policy.name()) return std::make_unique<Forward>(&policy);
    return make_pruning_policy(spec);
  };
}

}  // namespace prunekv::testing
