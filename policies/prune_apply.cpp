// apply_prune_plan: memory/ performs a policy's plan. Cuts go through drop_range (whole blocks,
// no data movement) or, token-exact, through compact; keep-sets through compact; block drops
// through drop_blocks. Touches only this sequence and the pool's thread-safe free, so several
// sequences may prune in parallel.
#include <vector>

#include "common/check.h"
#include "policies/pruning_policy.h"

namespace prunekv {
namespace {

size_t count_prompt_slots(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, int32_t prompt_len) {
  size_t count = 0;
  for (Pos pos : kv.positions(layer, kv_head)) count += pos < prompt_len ? 1 : 0;
  return count;
}

// Prompt entries and the blocks they fill, over every (layer, KV head) list.
void count_prompt(const SequenceKv& kv, int32_t prompt_len, size_t& entries, size_t& blocks) {
  const KvLayout& layout = kv.layout();
  entries = blocks = 0;
  for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
    for (uint32_t kv_head = 0; kv_head < layout.num_kv_heads; ++kv_head) {
      const size_t n = count_prompt_slots(kv, layer, kv_head, prompt_len);
      entries += n;
      blocks += layout.blocks_for_slots(n);
    }
  }
}

// Token-exact cut of one list: every slot whose position lies in [first, last] goes.
size_t compact_cut(SequenceKv& kv, uint32_t layer, uint32_t kv_head, Pos first, Pos last) {
  const auto positions = kv.positions(layer, kv_head);
  std::vector<uint32_t> keep;
  keep.reserve(positions.size());
  for (size_t slot = 0; slot < positions.size(); ++slot) {
    if (positions[slot] < first || positions[slot] > last) keep.push_back(static_cast<uint32_t>(slot));
  }
  if (keep.size() == positions.size()) return 0;
  return kv.compact(layer, kv_head, keep);
}

// Performs every operation of `plan`; cuts must lie inside [cut_begin, cut_end). Returns the
// blocks freed.
size_t perform_plan(const PrunePlan& plan, SequenceKv& kv, Pos cut_begin, Pos cut_end) {
  const KvLayout& layout = kv.layout();
  size_t freed = 0;
  for (const PrunePlan::LayerCut& cut : plan.cuts) {
    PKV_CHECK(cut.layer < layout.num_layers, "cut of layer {} in a {}-layer model", cut.layer, layout.num_layers);
    PKV_CHECK(cut.first_pos <= cut.last_pos && cut.first_pos >= cut_begin && cut.last_pos < cut_end,
              "cut [{}, {}] is not inside [{}, {})", cut.first_pos, cut.last_pos, cut_begin, cut_end);
    if (plan.block_rounded) {
      freed += kv.drop_range(cut.layer, cut.first_pos, cut.last_pos);
    } else {
      for (uint32_t kv_head = 0; kv_head < layout.num_kv_heads; ++kv_head) {
        freed += compact_cut(kv, cut.layer, kv_head, cut.first_pos, cut.last_pos);
      }
    }
  }
  for (const PrunePlan::HeadKeep& keep : plan.keeps) {
    PKV_CHECK(keep.layer < layout.num_layers && keep.kv_head < layout.num_kv_heads,
              "keep-set of (layer {}, KV head {}) outside {} x {}", keep.layer, keep.kv_head,
              layout.num_layers, layout.num_kv_heads);
    freed += kv.compact(keep.layer, keep.kv_head, keep.keep_slots);
  }
  for (const PrunePlan::HeadBlockDrop& drop : plan.block_drops) {
    freed += kv.drop_blocks(drop.layer, drop.kv_head, drop.blocks);
  }
  return freed;
}

}  // namespace

PruneOutcome apply_prune_plan(const PrunePlan& plan, SequenceKv& kv, int32_t prompt_len) {
  PruneOutcome outcome;
  count_prompt(kv, prompt_len, outcome.prompt_entries_total, outcome.prompt_blocks_before);
  outcome.blocks_freed = perform_plan(plan, kv, 0, prompt_len);
  count_prompt(kv, prompt_len, outcome.prompt_entries_kept, outcome.prompt_blocks_after);
  return outcome;
}

size_t apply_generated_prune_plan(const PrunePlan& plan, SequenceKv& kv, const GeneratedPruneView& view) {
  return perform_plan(plan, kv, view.prompt_len, view.window_first);
}

PrunePlan PruningPolicy::select_generated(const GeneratedPruneView&) const {
  PKV_CHECK(false, "policy {} does not prune generated tokens", name());
  return {};
}

}  // namespace prunekv
