#pragma once
// SnapKV's selection, shared by `snapkv` (one budget for every layer) and `pyramidkv` (budgets
// decreasing with depth). Internal to policies/.
#include <cstddef>
#include <span>
#include <vector>

#include "policies/pruning_policy.h"

namespace prunekv::detail {

inline constexpr size_t kSnapKvPoolKernel = 7;

// Per (layer, KV head): the observation window (the last kObservationWindow prompt positions)
// stays; of the older prompt slots, the budget minus the window with the highest scores stay,
// where score = kWindowSum summed over the group's query heads, max-pooled over positions with
// kernel 7 (same padding). layer_budgets[layer] = prompt tokens kept in that layer.
PrunePlan select_snapkv(const PruneView& view, std::span<const size_t> layer_budgets);

// PyramidKV's per-layer budgets for an n-token prompt: linear in depth from 1.5x to 0.5x the
// fixed budget of `keep_ratio`, so they average to it. Layers whose share would pass n are capped
// at n and the excess goes to the others in proportion to their share, so keep_ratio = 1 keeps
// everything; each budget is then clamped to [kNumSinkTokens + kObservationWindow, n].
std::vector<size_t> pyramid_layer_budgets(double keep_ratio, size_t n, uint32_t num_layers);

}  // namespace prunekv::detail
