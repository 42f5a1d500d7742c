#pragma once
// A small pool and one prefilled sequence with hand-settable statistics and keys, for the policy
// tests. Positions 0..prompt_len-1 are appended in order, so slot i holds position i until a
// prune moves it.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "policies/pruning_policy.h"

namespace prunekv::testing {

struct PruneFixture {
  KvLayout layout;
  uint32_t group;  // query heads per KV head
  BlockPool pool;
  SequenceKv kv;

  PruneFixture(uint32_t num_layers, uint32_t num_kv_heads, uint32_t group_size, size_t num_blocks = 4096,
               uint32_t block_size = 16, uint32_t head_dim = 4)
      : layout{num_layers, num_kv_heads, head_dim, block_size, KvDtype::kF32},
        group(group_size),
        pool(layout, num_blocks),
        kv(pool, group_size) {}

  // Appends positions [first, first + count) to every list.
  void append(Pos first, size_t count) {
    std::vector<Pos> positions(count);
    std::iota(positions.begin(), positions.end(), first);
    ASSERT_TRUE(kv.append(positions));
  }
  void set_stat(uint32_t layer, uint32_t kv_head, size_t slot, SlotStat stat, uint32_t g, float value) {
    kv.slot_stats(layer, kv_head, slot)[size_t{static_cast<uint32_t>(stat)} * group + g] = value;
  }
  uint32_t num_query_heads() const { return layout.num_kv_heads * group; }
  PruneView view(int32_t prompt_len) const { return PruneView{kv, prompt_len, num_query_heads()}; }
  std::vector<Pos> positions(uint32_t layer, uint32_t kv_head) const {
    const auto p = kv.positions(layer, kv_head);
    return {p.begin(), p.end()};
  }
};

// [first, last] as a vector.
inline std::vector<Pos> pos_range(Pos first, Pos last) {
  std::vector<Pos> out;
  for (Pos p = first; p <= last; ++p) out.push_back(p);
  return out;
}
inline std::vector<Pos> concat(std::vector<Pos> a, const std::vector<Pos>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace prunekv::testing
