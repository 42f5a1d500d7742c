#include "tests/testing/kv_invariants.h"

#include <vector>

namespace prunekv::testing {

::testing::AssertionResult pool_accounting_holds(const BlockPool& pool, std::span<const SequenceKv* const> sequences,
                                                 std::span<const BlockId> raw_held) {
  const KvLayout& layout = pool.layout();
  const size_t total = pool.num_total_blocks();
  if (pool.num_free_blocks() + pool.num_used_blocks() != total)
    return ::testing::AssertionFailure() << "free " << pool.num_free_blocks() << " + used " << pool.num_used_blocks()
                                         << " != total " << total;
  std::vector<uint32_t> holders(total, 0);
  auto hold = [&](BlockId id) -> bool {
    if (id >= total) return false;
    ++holders[id];
    return true;
  };
  for (BlockId id : raw_held)
    if (!hold(id)) return ::testing::AssertionFailure() << "raw holder has out-of-range block " << id;
  for (size_t s = 0; s < sequences.size(); ++s) {
    const SequenceKv& seq = *sequences[s];
    size_t seq_blocks = 0;
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      for (uint32_t head = 0; head < layout.num_kv_heads; ++head) {
        const auto blocks = seq.blocks(layer, head);
        const size_t slots = seq.num_slots(layer, head);
        if (seq.positions(layer, head).size() != slots || blocks.size() != layout.blocks_for_slots(slots))
          return ::testing::AssertionFailure() << "sequence " << s << " list (" << layer << ", " << head << ") has "
                                               << blocks.size() << " blocks for " << slots << " slots";
        for (BlockId id : blocks)
          if (!hold(id))
            return ::testing::AssertionFailure() << "sequence " << s << " holds out-of-range block " << id;
        seq_blocks += blocks.size();
      }
    }
    if (seq_blocks != seq.num_blocks())
      return ::testing::AssertionFailure() << "sequence " << s << " num_blocks() " << seq.num_blocks() << " but lists hold "
                                           << seq_blocks;
  }
  size_t used = 0;
  for (size_t id = 0; id < total; ++id) {
    const uint32_t refs = pool.ref_count(BlockId(id));
    if (refs != holders[id])
      return ::testing::AssertionFailure() << "block " << id << " has ref count " << refs << " but " << holders[id]
                                           << " holders";
    used += holders[id] > 0;
  }
  if (used != pool.num_used_blocks())
    return ::testing::AssertionFailure() << "pool reports " << pool.num_used_blocks() << " used blocks, holders cover "
                                         << used;
  return ::testing::AssertionSuccess();
}

}  // namespace prunekv::testing
