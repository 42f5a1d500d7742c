#pragma once
// policies/: KV pruning policies behind one interface, and what they see of a sequence. Uses
// common and memory (the attention statistics live there); never model.
//
// One interface for every KV pruning policy. A policy sees a read-only view of one sequence's KV
// state (positions and the statistics the forward step recorded) right after its prefill, and
// returns a PrunePlan; apply_prune_plan() makes memory/ perform it. A policy never allocates or
// frees.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "memory/sequence_kv.h"
#include "memory/slot_stats.h"

namespace prunekv {

struct PrunePlan {
  // Evict prompt positions [first_pos, last_pos] from every KV head of `layer`.
  struct LayerCut {
    uint32_t layer;
    Pos first_pos;
    Pos last_pos;
  };
  // Keep exactly these slot indices (strictly increasing) of one (layer, KV head) list.
  struct HeadKeep {
    uint32_t layer;
    uint32_t kv_head;
    std::vector<uint32_t> keep_slots;
  };
  // Unlink exactly these blocks (strictly increasing indices into the list's blocks) of one
  // (layer, KV head) list: drop_blocks, no data movement.
  struct HeadBlockDrop {
    uint32_t layer;
    uint32_t kv_head;
    std::vector<uint32_t> blocks;
  };
  std::vector<LayerCut> cuts;
  // true: cuts free whole blocks only (drop_range, no data movement, the cut rounded to blocks);
  // false: cuts are token-exact (compaction).
  bool block_rounded = true;
  std::vector<HeadKeep> keeps;
  std::vector<HeadBlockDrop> block_drops;
};

struct PruneView {
  const SequenceKv& kv;
  int32_t prompt_len;        // prompt positions are [0, prompt_len)
  uint32_t num_query_heads;  // G = num_query_heads / kv.layout().num_kv_heads
};

// Pruning during decode (EngineConfig::prune_every): what a policy sees of a sequence whose
// prompt was pruned once, when its generated tokens are pruned again. Positions below
// prompt_len stay (the prompt's decision stands); positions from window_first on stay (the
// newest generated tokens, whose queries recorded SlotStat::kWindowSum since the last prune);
// the generated positions [prompt_len, window_first) are the candidates.
struct GeneratedPruneView {
  const SequenceKv& kv;
  int32_t prompt_len;
  int32_t window_first;
  uint32_t num_query_heads;
};

class PruningPolicy {
 public:
  virtual ~PruningPolicy() = default;
  // Canonical spec, e.g. "dbudget", "dbudget:exact", "snapkv:0.5".
  virtual std::string name() const = 0;
  // false only for `full`: nothing is recorded and nothing is pruned.
  virtual bool prunes() const { return true; }
  // The statistics the forward step must record during prefill, a mask of stat_bit(SlotStat)
  // (none by default): the forward step skips every query row that feeds none of them.
  virtual StatMask needed_stats() const { return 0; }
  bool needs_stats() const { return needed_stats() != 0; }
  // The observation window of SlotStat::kWindowSum (read only when needed_stats() has it).
  virtual int32_t stats_window() const { return 8; }
  // What the forward step records while an n-token prompt is prefilled.
  StatsRequest stats_request(int32_t prompt_len) const {
    return {prompt_len, stats_window(), needed_stats()};
  }
  // true when select() reads key vectors (knorm): the pool must hold real K/V data, so a
  // count-only pool (the simulator) cannot run it.
  virtual bool needs_key_data() const { return false; }
  virtual PrunePlan select(const PruneView& view) const = 0;
  // true when the policy's rule can be re-applied to generated tokens during decode
  // (select_generated); the others ignore --prune-every: their prompt decision is the only one.
  virtual bool prunes_generated() const { return false; }
  // The plan for the candidates of `view` (prompt_len <= position < window_first); every other
  // slot stays. Reads SlotStat::kWindowSum of the window queries only. Called only when
  // prunes_generated().
  virtual PrunePlan select_generated(const GeneratedPruneView& view) const;
};

// What pruning one sequence did. "Prompt entries" are (layer, KV head, prompt position) triples.
struct PruneOutcome {
  size_t blocks_freed = 0;
  size_t prompt_entries_total = 0;
  size_t prompt_entries_kept = 0;
  size_t prompt_blocks_before = 0;  // blocks holding prompt slots, all lists
  size_t prompt_blocks_after = 0;
  double kept_fraction() const { return prompt_entries_total ? double(prompt_entries_kept) / double(prompt_entries_total) : 1.0; }
  double kept_block_fraction() const { return prompt_blocks_before ? double(prompt_blocks_after) / double(prompt_blocks_before) : 1.0; }
};

// Shared constants of the policies (method.md: m = 4 sinks; SnapKV's observation window of 8).
inline constexpr int32_t kNumSinkTokens = 4;
inline constexpr int32_t kObservationWindow = 8;

// Performs `plan` on `kv` through drop_range (block-rounded cuts) / compact (token-exact cuts and
// keep-sets) / drop_blocks (block drops); returns what it kept and freed. Touches only `kv` and the pool's thread-safe free,
// so different sequences may be pruned in parallel. Compaction writes blocks in place: the lists
// it compacts must not share blocks with a fork (unshare them first, on the engine thread).
// Prompt blocks are counted per list as blocks_for_slots(prompt slots in the list).
PruneOutcome apply_prune_plan(const PrunePlan& plan, SequenceKv& kv, int32_t prompt_len);
// Performs a select_generated plan: every cut must lie inside [prompt_len, window_first).
// Returns the number of blocks freed.
size_t apply_generated_prune_plan(const PrunePlan& plan, SequenceKv& kv, const GeneratedPruneView& view);

// "full", "dbudget[:T=0.01][:exact]", "streaming:R", "h2o:R", "snapkv:R", "pyramidkv:R",
// "knorm:R", "topp[:eps=0.001]", "topp-blk[:eps=0.003]", "dbudget-l1[:eps=0.01]". Throws ConfigError on an unknown name or a bad parameter.
std::unique_ptr<PruningPolicy> make_pruning_policy(std::string_view spec);
// Every policy with its parameters, for --policy-help.
std::string pruning_policy_help();

}  // namespace prunekv
