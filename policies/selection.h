#pragma once
// Helpers shared by the policies: the token budget, the prompt slots of one (layer, KV head)
// list, statistics per query head or group-summed, and turning "these prompt slots stay" into a
// HeadKeep. Internal to policies/.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "memory/slot_stats.h"
#include "policies/pruning_policy.h"

namespace prunekv::detail {

// Tokens a fixed-budget policy keeps of an n-token prompt: ceil(ratio * n), at least
// kNumSinkTokens + kObservationWindow (below that the recent context itself goes), at most n.
size_t fixed_budget(double keep_ratio, size_t n);

// The prompt slots (position < prompt_len) of one list, in slot order, with their positions.
struct PromptSlots {
  std::vector<uint32_t> slots;
  std::vector<Pos> positions;
  size_t size() const { return slots.size(); }
};
PromptSlots prompt_slots(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, int32_t prompt_len);

// Per prompt slot of `ps`: the statistic summed over the G query heads of the KV head's group.
// Requires kv.has_stats() (a PKV_CHECK: the scheduler asks for statistics when needs_stats()).
std::vector<double> group_stat_sum(const SequenceKv& kv, uint32_t layer, uint32_t kv_head,
                                   const PromptSlots& ps, SlotStat stat);

// Checks that the sequence carries statistics for view.num_query_heads query heads (G per KV
// head), so a query head index h = kv_head * G + g means what the policy thinks.
void check_stats_group(const PruneView& view);

// Per prompt slot of `ps`, the statistic of each of the G query heads of the KV head's group:
// [ps.size()][G], in double. Requires the statistic to be carried (a PKV_CHECK).
std::vector<double> query_head_stats(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, const PromptSlots& ps,
                                     SlotStat stat);

// The statistic of every query head of `layer` over prompt positions [0, n): [num_query_heads][n]
// with query head h = kv_head * G + g; a position missing from a list reads as zero. Requires the
// statistic to be carried (a PKV_CHECK).
std::vector<float> layer_stat_rows(const SequenceKv& kv, uint32_t layer, size_t n, SlotStat stat);

// Indices i in [begin, end) of the `count` largest scores[i] (ties: the older index wins, so the
// choice is deterministic). count is clamped to the range.
std::vector<size_t> top_k_indices(std::span<const double> scores, size_t begin, size_t end, size_t count);

// Builds the HeadKeep of one list: the prompt slots marked in `keep_prompt` (indexed like
// `ps`) plus every slot that is not a prompt slot (decode tokens are never pruned). Returns
// false (and leaves `plan` alone) when every slot stays, so no compaction is asked for.
bool add_head_keep(PrunePlan& plan, const SequenceKv& kv, uint32_t layer, uint32_t kv_head,
                   const PromptSlots& ps, const std::vector<bool>& keep_prompt);

// Max-pooling with `kernel` (odd) and same padding: out[i] = max of in[i-k/2 .. i+k/2] within
// the array (padding never wins, as with torch max_pool1d's implicit -inf padding).
std::vector<double> max_pool_same(std::span<const double> in, size_t kernel);

}  // namespace prunekv::detail
