// `topp` and `topp-blk`: threshold-free top-p of window attention. Each (layer, KV head) list
// keeps, besides the sinks / first block and the observation window, the fewest older tokens
// (or blocks) whose window attention covers all but epsilon of every query head's mass in the
// group, ranked by the largest share any of those heads pays them. No budget: how much a list
// keeps follows from its own attention, so a diffuse head keeps more than a peaked one. Every
// layer prunes; positions are never renumbered.
#include <fmt/format.h>

#include <algorithm>

#include "common/check.h"
#include "policies/attention_mass_rules.h"
#include "policies/policy_factories.h"
#include "policies/selection.h"

namespace prunekv::detail {

std::vector<bool> top_p_keep(std::span<const double> masses, size_t group, const std::vector<bool>& forced,
                             double epsilon) {
  PKV_CHECK(group > 0 && masses.size() == forced.size() * group, "{} masses for {} units x {} heads", masses.size(),
            forced.size(), group);
  const size_t num_units = forced.size();
  std::vector<double> total(group, 0.0);
  std::vector<double> kept(group, 0.0);
  for (size_t u = 0; u < num_units; ++u) {
    for (size_t g = 0; g < group; ++g) {
      total[g] += masses[u * group + g];
      if (forced[u]) kept[g] += masses[u * group + g];
    }
  }
  std::vector<bool> keep = forced;
  // (share, unit) by value, one sort over a contiguous array: higher share first, then the lower
  // index, a total order.
  std::vector<std::pair<double, size_t>> order;
  order.reserve(num_units);
  for (size_t u = 0; u < num_units; ++u) {
    if (forced[u]) continue;
    double share = 0.0;
    for (size_t g = 0; g < group; ++g)
      if (total[g] > 0.0) share = std::max(share, masses[u * group + g] / total[g]);
    order.emplace_back(share, u);
  }
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  auto covered = [&] {
    for (size_t g = 0; g < group; ++g)
      if (kept[g] < (1.0 - epsilon) * total[g]) return false;
    return true;
  };
  for (const auto& ranked : order) {
    if (covered()) break;
    const size_t u = ranked.second;
    keep[u] = true;
    for (size_t g = 0; g < group; ++g) kept[g] += masses[u * group + g];
  }
  return keep;
}

namespace {

class TopPPolicy final : public PruningPolicy {
 public:
  enum class Unit { kToken, kBlock };
  TopPPolicy(Unit unit, double epsilon) : unit_(unit), epsilon_(epsilon) {}

  std::string name() const override {
    const bool tokens = unit_ == Unit::kToken;
    std::string spec = tokens ? "topp" : "topp-blk";
    if (epsilon_ != (tokens ? kTopPEpsilon : kTopPBlockEpsilon)) spec += fmt::format(":eps={:g}", epsilon_);
    return spec;
  }
  StatMask needed_stats() const override { return stat_bit(SlotStat::kWindowSum); }
  int32_t stats_window() const override { return kThresholdFreeWindow; }

  PrunePlan select(const PruneView& view) const override {
    check_stats_group(view);
    const KvLayout& layout = view.kv.layout();
    const Pos window_first = view.prompt_len - std::min(kThresholdFreeWindow, view.prompt_len);
    PrunePlan plan;
    plan.block_rounded = false;
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      for (uint32_t kv_head = 0; kv_head < layout.num_kv_heads; ++kv_head) {
        const PromptSlots ps = prompt_slots(view.kv, layer, kv_head, view.prompt_len);
        const std::vector<double> masses = query_head_stats(view.kv, layer, kv_head, ps, SlotStat::kWindowSum);
        if (unit_ == Unit::kToken)
          select_tokens(view.kv, layer, kv_head, ps, masses, window_first, plan);
        else
          select_blocks(view.kv, layer, kv_head, ps, masses, window_first, plan);
      }
    }
    return plan;
  }

 private:
  // Units are the prompt tokens; sinks and window stay; the rest is compacted away.
  void select_tokens(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, const PromptSlots& ps,
                     const std::vector<double>& masses, Pos window_first, PrunePlan& plan) const {
    std::vector<bool> forced(ps.size());
    for (size_t i = 0; i < ps.size(); ++i) forced[i] = ps.positions[i] < kNumSinkTokens || ps.positions[i] >= window_first;
    add_head_keep(plan, kv, layer, kv_head, ps, top_p_keep(masses, kv.stats_group(), forced, epsilon_));
  }

  // Units are the list's blocks; block 0 and every block holding a window or non-prompt position
  // stay; the rest are unlinked whole (no data moves).
  void select_blocks(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, const PromptSlots& ps,
                     const std::vector<double>& masses, Pos window_first, PrunePlan& plan) const {
    const size_t group = kv.stats_group();
    const size_t block_size = kv.layout().block_size;
    const auto positions = kv.positions(layer, kv_head);
    const size_t num_blocks = kv.blocks(layer, kv_head).size();
    std::vector<double> block_masses(num_blocks * group, 0.0);
    for (size_t i = 0; i < ps.size(); ++i)
      for (size_t g = 0; g < group; ++g) block_masses[ps.slots[i] / block_size * group + g] += masses[i * group + g];
    std::vector<bool> forced(num_blocks, false);
    if (num_blocks > 0) forced[0] = true;
    for (size_t slot = 0; slot < positions.size(); ++slot)
      if (positions[slot] >= window_first) forced[slot / block_size] = true;  // window or decode token
    const std::vector<bool> keep = top_p_keep(block_masses, group, forced, epsilon_);
    PrunePlan::HeadBlockDrop drop{layer, kv_head, {}};
    for (size_t b = 0; b < num_blocks; ++b)
      if (!keep[b]) drop.blocks.push_back(static_cast<uint32_t>(b));
    if (!drop.blocks.empty()) plan.block_drops.push_back(std::move(drop));
  }

  Unit unit_;
  double epsilon_;
};

}  // namespace

std::unique_ptr<PruningPolicy> make_topp_policy(double epsilon) {
  return std::make_unique<TopPPolicy>(TopPPolicy::Unit::kToken, epsilon);
}

std::unique_ptr<PruningPolicy> make_topp_block_policy(double epsilon) {
  return std::make_unique<TopPPolicy>(TopPPolicy::Unit::kBlock, epsilon);
}

}  // namespace prunekv::detail
