#include "policies/selection.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/check.h"

namespace prunekv::detail {

size_t fixed_budget(double keep_ratio, size_t n) {
  PKV_CHECK(keep_ratio > 0.0 && keep_ratio <= 1.0, "keep ratio {} outside (0, 1]", keep_ratio);
  // The epsilon keeps ratios like 0.7 * 100 = 70.00000000000001 from rounding up to 71.
  const auto wanted = static_cast<size_t>(std::ceil(keep_ratio * double(n) - 1e-9));
  const size_t floor_budget = size_t{kNumSinkTokens} + size_t{kObservationWindow};
  return std::min(n, std::max(wanted, floor_budget));
}

PromptSlots prompt_slots(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, int32_t prompt_len) {
  PromptSlots ps;
  const auto positions = kv.positions(layer, kv_head);
  for (size_t slot = 0; slot < positions.size(); ++slot) {
    if (positions[slot] < prompt_len) {
      ps.slots.push_back(static_cast<uint32_t>(slot));
      ps.positions.push_back(positions[slot]);
    }
  }
  return ps;
}

std::vector<double> group_stat_sum(const SequenceKv& kv, uint32_t layer, uint32_t kv_head,
                                   const PromptSlots& ps, SlotStat stat) {
  PKV_CHECK(kv.stats_carried() & stat_bit(stat), "the policy reads attention statistics but the sequence records none");
  const uint32_t group = kv.stats_group();
  const size_t offset = kv.stat_offset(stat);
  std::vector<double> sums(ps.size(), 0.0);
  for (size_t i = 0; i < ps.size(); ++i) {
    const float* stats = kv.slot_stats(layer, kv_head, ps.slots[i]) + offset;
    double sum = 0.0;
    for (uint32_t g = 0; g < group; ++g) sum += double(stats[g]);
    sums[i] = sum;
  }
  return sums;
}

void check_stats_group(const PruneView& view) {
  const uint32_t group = view.kv.stats_group();
  const uint32_t num_kv_heads = view.kv.layout().num_kv_heads;
  PKV_CHECK(size_t{group} * num_kv_heads == view.num_query_heads,
            "statistics for {} query heads per KV head, but {} query heads over {} KV heads", group,
            view.num_query_heads, num_kv_heads);
}

std::vector<double> query_head_stats(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, const PromptSlots& ps,
                                     SlotStat stat) {
  PKV_CHECK(kv.stats_carried() & stat_bit(stat), "the policy reads attention statistics but the sequence records none");
  const uint32_t group = kv.stats_group();
  const size_t offset = kv.stat_offset(stat);
  std::vector<double> out(ps.size() * group);
  for (size_t i = 0; i < ps.size(); ++i) {
    const float* stats = kv.slot_stats(layer, kv_head, ps.slots[i]) + offset;
    for (uint32_t g = 0; g < group; ++g) out[i * group + g] = double(stats[g]);
  }
  return out;
}

std::vector<float> layer_stat_rows(const SequenceKv& kv, uint32_t layer, size_t n, SlotStat stat) {
  PKV_CHECK(kv.stats_carried() & stat_bit(stat), "the policy reads attention statistics but the sequence records none");
  const uint32_t group = kv.stats_group();
  const size_t offset = kv.stat_offset(stat);
  const uint32_t num_kv_heads = kv.layout().num_kv_heads;
  std::vector<float> rows(size_t{num_kv_heads} * group * n, 0.0f);
  for (uint32_t kv_head = 0; kv_head < num_kv_heads; ++kv_head) {
    const auto positions = kv.positions(layer, kv_head);
    for (size_t slot = 0; slot < positions.size(); ++slot) {
      const Pos pos = positions[slot];
      if (pos < 0 || size_t(pos) >= n) continue;
      const float* stats = kv.slot_stats(layer, kv_head, slot) + offset;
      for (uint32_t g = 0; g < group; ++g) rows[(size_t{kv_head} * group + g) * n + size_t(pos)] = stats[g];
    }
  }
  return rows;
}

std::vector<size_t> top_k_indices(std::span<const double> scores, size_t begin, size_t end, size_t count) {
  PKV_CHECK(begin <= end && end <= scores.size(), "range [{}, {}) outside {} scores", begin, end, scores.size());
  std::vector<size_t> order(end - begin);
  std::iota(order.begin(), order.end(), begin);
  count = std::min(count, order.size());
  // A total order (higher score first, then the older index), so the chosen set is unique and
  // nth_element's linear selection suffices; the caller wants the indices in slot order anyway.
  auto better = [&](size_t a, size_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); };
  if (count < order.size()) {
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count), order.end(), better);
    order.resize(count);
  }
  std::sort(order.begin(), order.end());
  return order;
}

bool add_head_keep(PrunePlan& plan, const SequenceKv& kv, uint32_t layer, uint32_t kv_head,
                   const PromptSlots& ps, const std::vector<bool>& keep_prompt) {
  PKV_CHECK(keep_prompt.size() == ps.size(), "{} keep flags for {} prompt slots", keep_prompt.size(), ps.size());
  if (std::all_of(keep_prompt.begin(), keep_prompt.end(), [](bool k) { return k; })) return false;
  const size_t num_slots = kv.num_slots(layer, kv_head);
  std::vector<bool> keep(num_slots, true);  // non-prompt slots stay
  for (size_t i = 0; i < ps.size(); ++i) keep[ps.slots[i]] = keep_prompt[i];
  PrunePlan::HeadKeep head{layer, kv_head, {}};
  for (size_t slot = 0; slot < num_slots; ++slot) {
    if (keep[slot]) head.keep_slots.push_back(static_cast<uint32_t>(slot));
  }
  plan.keeps.push_back(std::move(head));
  return true;
}

std::vector<double> max_pool_same(std::span<const double> in, size_t kernel) {
  PKV_CHECK(kernel % 2 == 1, "max-pool kernel {} must be odd", kernel);
  const size_t half = kernel / 2;
  std::vector<double> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const size_t lo = i >= half ? i - half : 0;
    const size_t hi = std::min(in.size(), i + half + 1);
    out[i] = *std::max_element(in.begin() + static_cast<std::ptrdiff_t>(lo), in.begin() + static_cast<std::ptrdiff_t>(hi));
  }
  return out;
}

}  // namespace prunekv::detail
