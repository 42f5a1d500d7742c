// `topp` and `topp-blk`: threshold-free top-p of window attention. Each (layer, KV head) list
// keeps, besides the sinks / first block and the observation window, the fewest older tokens
// (or blocks) whose window attention covers all but epsilon of every query head's mass in the
// group, ranked by the largest share any of those heads pays them. No budget: how much a list
// keeps follows from its own attention, so a diffuse head keeps more than a peaked one. Every
// layer prunes; positions are never renumbered.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

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
    const Pos window_first = view.prompt_len - std::min(kThresholdFreeWindow, view.prompt_len);
    // Prompt tokens are the candidates; sinks (tokens) or block 0 (blocks) and the window stay.
    const auto stays = [&](Pos pos) {
      return pos >= window_first || (unit_ == Unit::kToken ? pos < kNumSinkTokens : pos < Pos(view.kv.layout().block_size));
    };
    return select_lists(view.kv, view.prompt_len, stays);
  }

  bool prunes_generated() const override { return true; }
  // The same rule over the generated tokens: every prompt slot and the window stay, and count
  // in T_g, so the candidates may lose at most epsilon of each query head's window attention.
  PrunePlan select_generated(const GeneratedPruneView& view) const override {
    check_stats_group(PruneView{view.kv, view.prompt_len, view.num_query_heads});
    const auto stays = [&](Pos pos) { return pos < view.prompt_len || pos >= view.window_first; };
    return select_lists(view.kv, std::numeric_limits<int32_t>::max(), stays);
  }

 private:
  // Every (layer, KV head) list: the slots below position `scored_end` are scored (their mass
  // makes T_g), the units holding a position with stays(pos) are kept, the rest compete.
  template <typename Stays>
  PrunePlan select_lists(const SequenceKv& kv, int32_t scored_end, const Stays& stays) const {
    const KvLayout& layout = kv.layout();
    PrunePlan plan;
    plan.block_rounded = false;
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      for (uint32_t kv_head = 0; kv_head < layout.num_kv_heads; ++kv_head) {
        const PromptSlots ps = prompt_slots(kv, layer, kv_head, scored_end);
        const std::vector<double> masses = query_head_stats(kv, layer, kv_head, ps, SlotStat::kWindowSum);
        if (unit_ == Unit::kToken)
          select_tokens(kv, layer, kv_head, ps, masses, stays, plan);
        else
          select_blocks(kv, layer, kv_head, ps, masses, stays, plan);
      }
    }
    return plan;
  }

  // Units are the scored tokens; those that stay, stay; the rest is compacted away.
  template <typename Stays>
  void select_tokens(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, const PromptSlots& ps,
                     const std::vector<double>& masses, const Stays& stays, PrunePlan& plan) const {
    std::vector<bool> forced(ps.size());
    for (size_t i = 0; i < ps.size(); ++i) forced[i] = stays(ps.positions[i]);
    add_head_keep(plan, kv, layer, kv_head, ps, top_p_keep(masses, kv.stats_group(), forced, epsilon_));
  }

  // Units are the list's blocks; every block holding a position that stays, or an unscored
  // slot, stays; the rest are unlinked whole (no data moves).
  template <typename Stays>
  void select_blocks(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, const PromptSlots& ps,
                     const std::vector<double>& masses, const Stays& stays, PrunePlan& plan) const {
    const size_t group = kv.stats_group();
    const size_t block_size = kv.layout().block_size;
    const auto positions = kv.positions(layer, kv_head);
    const size_t num_blocks = kv.blocks(layer, kv_head).size();
    std::vector<double> block_masses(num_blocks * group, 0.0);
    for (size_t i = 0; i < ps.size(); ++i)
      for (size_t g = 0; g < group; ++g) block_masses[ps.slots[i] / block_size * group + g] += masses[i * group + g];
    std::vector<bool> forced(num_blocks, false);
    std::vector<bool> scored(positions.size(), false);
    for (uint32_t slot : ps.slots) scored[slot] = true;
    for (size_t slot = 0; slot < positions.size(); ++slot)
      if (!scored[slot] || stays(positions[slot])) forced[slot / block_size] = true;
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
