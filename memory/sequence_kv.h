#pragma once
// One sequence's KV state: for each (layer, KV head) an ordered block list, the number of valid
// slots, each slot's original position, and (optionally) per-slot attention statistics. Every
// list keeps all its blocks full except the last. Slot i of a list lives in block i / block_size
// at offset i % block_size.
//
// Threads: drop_range, drop_blocks, compact, drop_stats and free_all only free memory, so
// different sequences may run them in parallel on TBB workers; append, fork and unshare allocate
// and belong to the engine thread.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/check.h"
#include "common/ids.h"
#include "memory/block_pool.h"
#include "memory/slot_stats.h"

namespace prunekv {

class SequenceKv {
 public:
  // stats_group = query heads per KV head (G) to carry G floats per slot of each statistic in
  // `stats` (a policy reads one: carrying the others would only cost memory), or 0 for no
  // statistics (nothing is stored or recorded then).
  explicit SequenceKv(BlockPool& pool, uint32_t stats_group = 0, StatMask stats = kAllSlotStats);
  ~SequenceKv();  // free_all()
  SequenceKv(const SequenceKv&) = delete;
  SequenceKv& operator=(const SequenceKv&) = delete;

  const KvLayout& layout() const { return pool_->layout(); }
  BlockPool& pool() const { return *pool_; }

  // Blocks append(n tokens) would allocate now, summed over every list (lists pruned to
  // different lengths cross block boundaries at different tokens), including the copy of a
  // partly filled last block that is shared with a fork (copy-on-write).
  size_t blocks_needed(size_t num_new_tokens) const;
  // Appends one slot per position to every list, allocating blocks as boundaries are crossed.
  // All or nothing: returns false and changes nothing when the pool is short. The new slots are
  // the last positions.size() of each list; K/V contents are for the caller to write and
  // statistics start at zero.
  [[nodiscard]] bool append(std::span<const Pos> positions);

  size_t num_slots(uint32_t layer, uint32_t kv_head) const { return list(layer, kv_head).positions.size(); }
  std::span<const BlockId> blocks(uint32_t layer, uint32_t kv_head) const { return list(layer, kv_head).blocks; }
  std::span<const Pos> positions(uint32_t layer, uint32_t kv_head) const { return list(layer, kv_head).positions; }

  // f32 KV: head_dim floats of K / V for one slot. Requires a pool with storage.
  float* key(uint32_t layer, uint32_t kv_head, size_t slot) const;
  float* value(uint32_t layer, uint32_t kv_head, size_t slot) const;
  // Stores head_dim floats of K and of V into one slot in the pool's element type (f16 rounds to
  // nearest). Requires a pool with storage.
  void write_kv(uint32_t layer, uint32_t kv_head, size_t slot, const float* k, const float* v) const;

  uint32_t stats_group() const { return stats_group_; }
  bool has_stats() const { return stats_group_ != 0; }
  // The statistics carried (none without stats_group).
  StatMask stats_carried() const { return has_stats() ? stats_mask_ : 0; }
  size_t stats_per_slot() const { return size_t(std::popcount(stats_carried())) * stats_group_; }
  // Where statistic s (one carried) starts among a slot's floats: its G values follow.
  size_t stat_offset(SlotStat s) const {
    PKV_DCHECK((stats_carried() & stat_bit(s)) != 0, "statistic {} is not carried", static_cast<uint32_t>(s));
    return size_t(std::popcount(stats_mask_ & (stat_bit(s) - 1))) * stats_group_;
  }
  // stats_per_slot() floats of one slot: the carried statistics in SlotStat order, G each.
  float* slot_stats(uint32_t layer, uint32_t kv_head, size_t slot);
  const float* slot_stats(uint32_t layer, uint32_t kv_head, size_t slot) const;
  // Releases the statistics and stops carrying them (has_stats() is false afterwards): a
  // sequence pruned once needs them no more, and they are host memory outside the pool that
  // every decode token would otherwise grow.
  void drop_stats();

  // Unlinks every block of `layer` (all KV heads) whose slots all lie in positions
  // [first_pos, last_pos] and returns it to the pool: no K/V data moves. Slots of partly covered
  // blocks stay. Returns the number of blocks freed.
  size_t drop_range(uint32_t layer, Pos first_pos, Pos last_pos);
  // Unlinks blocks `block_indices` (strictly increasing indices into blocks(layer, kv_head)) of
  // one list and returns them to the pool; the later blocks slide down with their positions and
  // statistics, no K/V data moves. Returns the number of blocks freed.
  size_t drop_blocks(uint32_t layer, uint32_t kv_head, std::span<const uint32_t> block_indices);
  // Keeps only `keep_slots` (strictly increasing slot indices) of one list: moves them down in
  // order with their K, V, positions and statistics, then frees the tail blocks. Returns the
  // number of blocks freed. The blocks written must not be shared (ref count 1).
  size_t compact(uint32_t layer, uint32_t kv_head, std::span<const uint32_t> keep_slots);
  // (Counts of "freed" blocks count blocks unlinked from this sequence: a block shared with a
  // fork only loses this sequence's reference.)
  // Returns every block to the pool; the sequence is empty afterwards. The one release path for
  // finish, abort, failure and preemption. Returns the number of blocks freed.
  size_t free_all();

  // A copy sharing every block (ref count +1 each); the last partly filled block of each list is
  // copied so appends stay private. Returns nothing when the pool cannot supply those copies.
  [[nodiscard]] std::optional<SequenceKv> fork() const;  // NOLINT: moves only
  // A moved-from sequence holds no blocks and no lists: only destroy or assign to it.
  SequenceKv(SequenceKv&& other) noexcept;
  // Releases this sequence's blocks, then takes other's. Both must use the same pool.
  SequenceKv& operator=(SequenceKv&& other) noexcept;

  // Replaces every shared block (ref count > 1) of one list by a private copy so compact() may
  // write it. All or nothing: returns false and changes nothing when the pool is short.
  // Engine thread (it allocates). Returns the number of blocks copied.
  std::optional<size_t> unshare(uint32_t layer, uint32_t kv_head);

  size_t num_blocks() const { return num_blocks_; }
  // Sum of num_slots over every list.
  size_t num_slots_total() const;

 private:
  struct List {
    std::vector<BlockId> blocks;
    std::vector<Pos> positions;  // one per slot
    std::vector<float> stats;    // stats_per_slot() per slot
  };
  bool last_block_shared(const List& l) const;
  const List& list(uint32_t layer, uint32_t kv_head) const { return lists_[layout().list_index(layer, kv_head)]; }
  List& list(uint32_t layer, uint32_t kv_head) { return lists_[layout().list_index(layer, kv_head)]; }

  BlockPool* pool_;
  uint32_t stats_group_;
  StatMask stats_mask_;
  std::vector<List> lists_;
  size_t num_blocks_ = 0;
  // Set once this sequence forks or is forked: only then can its blocks be shared, so only then
  // do appends pay for the ref-count lookup of copy-on-write (a hot path at simulation scale).
  mutable bool may_share_ = false;
};

}  // namespace prunekv
