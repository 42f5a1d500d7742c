#include "memory/sequence_kv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "common/check.h"
#include "memory/half.h"
#include "tests/testing/kv_invariants.h"

namespace prunekv {
namespace {

KvLayout make_layout(uint32_t layers, uint32_t kv_heads, uint32_t block_size, uint32_t head_dim = 3) {
  return KvLayout{.num_layers = layers, .num_kv_heads = kv_heads, .head_dim = head_dim, .block_size = block_size};
}

std::vector<Pos> positions_range(Pos first, Pos last) {  // [first, last]
  std::vector<Pos> out(size_t(last - first + 1));
  std::iota(out.begin(), out.end(), first);
  return out;
}

// Every float exact: small integers plus quarters.
float key_value(uint32_t layer, uint32_t head, Pos pos, size_t d) { return 1000.0f * layer + 100.0f * head + pos + 0.25f * d; }
float stat_value(uint32_t layer, uint32_t head, Pos pos, size_t k) { return 1000.0f * layer + 100.0f * head + pos + 0.125f * k; }

// Writes K, V and (if any) stats of every slot from its position.
void write_all(SequenceKv& seq) {
  const KvLayout& layout = seq.layout();
  for (uint32_t layer = 0; layer < layout.num_layers; ++layer)
    for (uint32_t head = 0; head < layout.num_kv_heads; ++head)
      for (size_t slot = 0; slot < seq.num_slots(layer, head); ++slot) {
        const Pos pos = seq.positions(layer, head)[slot];
        for (size_t d = 0; d < layout.head_dim; ++d) {
          seq.key(layer, head, slot)[d] = key_value(layer, head, pos, d);
          seq.value(layer, head, slot)[d] = -key_value(layer, head, pos, d);
        }
        for (size_t k = 0; k < seq.stats_per_slot(); ++k) seq.slot_stats(layer, head, slot)[k] = stat_value(layer, head, pos, k);
      }
}

// Checks K, V and stats of every slot against its position.
void expect_contents_match_positions(const SequenceKv& seq) {
  const KvLayout& layout = seq.layout();
  for (uint32_t layer = 0; layer < layout.num_layers; ++layer)
    for (uint32_t head = 0; head < layout.num_kv_heads; ++head)
      for (size_t slot = 0; slot < seq.num_slots(layer, head); ++slot) {
        const Pos pos = seq.positions(layer, head)[slot];
        SCOPED_TRACE(::testing::Message() << "layer " << layer << " head " << head << " slot " << slot << " pos " << pos);
        for (size_t d = 0; d < layout.head_dim; ++d) {
          ASSERT_EQ(seq.key(layer, head, slot)[d], key_value(layer, head, pos, d));
          ASSERT_EQ(seq.value(layer, head, slot)[d], -key_value(layer, head, pos, d));
        }
        for (size_t k = 0; k < seq.stats_per_slot(); ++k)
          ASSERT_EQ(seq.slot_stats(layer, head, slot)[k], stat_value(layer, head, pos, k));
      }
}

using Ids = std::vector<BlockId>;
using Positions = std::vector<Pos>;

Ids ids_of(const SequenceKv& seq, uint32_t layer, uint32_t head) {
  auto blocks = seq.blocks(layer, head);
  return Ids(blocks.begin(), blocks.end());
}
Positions positions_of(const SequenceKv& seq, uint32_t layer, uint32_t head) {
  auto positions = seq.positions(layer, head);
  return Positions(positions.begin(), positions.end());
}

TEST(SequenceKv, ScriptedAppendAllocatesAtBlockBoundariesAllOrNothing) {
  BlockPool pool(make_layout(1, 2, 16), 11);
  SequenceKv seq(pool);
  EXPECT_EQ(seq.blocks_needed(16), 2u);
  ASSERT_TRUE(seq.append(positions_range(0, 15)));
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0}));
  EXPECT_EQ(ids_of(seq, 0, 1), (Ids{1}));
  EXPECT_EQ(pool.num_used_blocks(), 2u);

  EXPECT_EQ(seq.blocks_needed(1), 2u);
  ASSERT_TRUE(seq.append(positions_range(16, 16)));
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 2}));
  EXPECT_EQ(ids_of(seq, 0, 1), (Ids{1, 3}));

  EXPECT_EQ(seq.blocks_needed(15), 0u);
  ASSERT_TRUE(seq.append(positions_range(17, 31)));
  EXPECT_EQ(pool.num_used_blocks(), 4u);
  ASSERT_TRUE(seq.append(positions_range(32, 32)));
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 2, 4}));
  EXPECT_EQ(ids_of(seq, 0, 1), (Ids{1, 3, 5}));
  EXPECT_EQ(seq.num_blocks(), 6u);
  EXPECT_EQ(seq.num_slots_total(), 66u);

  // 33 + 100 slots need 9 blocks per list: 12 more, 5 free.
  EXPECT_EQ(seq.blocks_needed(100), 12u);
  EXPECT_FALSE(seq.append(positions_range(33, 132)));
  EXPECT_EQ(pool.num_used_blocks(), 6u);
  EXPECT_EQ(seq.num_slots(0, 0), 33u);
  EXPECT_EQ(seq.num_blocks(), 6u);

  const SequenceKv* all[] = {&seq};
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));
  EXPECT_EQ(seq.free_all(), 6u);
  EXPECT_EQ(pool.num_used_blocks(), 0u);
  EXPECT_EQ(seq.num_slots_total(), 0u);
  EXPECT_EQ(seq.num_blocks(), 0u);
}

TEST(SequenceKv, WriteKvStoresF32ExactlyAndF16RoundedToNearest) {
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16}) {
    const KvLayout layout{2, 2, 8, 4, dtype};
    BlockPool pool(layout, 16);
    SequenceKv seq(pool);
    ASSERT_TRUE(seq.append(std::vector<Pos>{0, 1, 2, 3, 4, 5}));
    std::vector<float> k(8), v(8);
    for (size_t i = 0; i < 8; ++i) {
      k[i] = 0.1f * float(i) - 0.3f;  // not exact in f16
      v[i] = 1000.0f + float(i);      // exact in f16 (11 significant bits)
    }
    seq.write_kv(1, 1, 5, k.data(), v.data());  // slot 5: block 1, offset 1
    const std::byte* block = pool.block_data(seq.blocks(1, 1)[1]);
    const size_t elem = kv_dtype_bytes(dtype), row = 8 * elem;
    std::vector<float> k_back(8), v_back(8);
    if (dtype == KvDtype::kF32) {
      std::memcpy(k_back.data(), block + row, row);
      std::memcpy(v_back.data(), block + 4 * row + row, row);
      EXPECT_EQ(k_back, k);
    } else {
      halves_to_floats(k_back.data(), reinterpret_cast<const uint16_t*>(block + row), 8);
      halves_to_floats(v_back.data(), reinterpret_cast<const uint16_t*>(block + 4 * row + row), 8);
      for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(k_back[i], k[i], 1e-3f * std::max(1.0f, std::fabs(k[i])));
    }
    EXPECT_EQ(v_back, v);
  }
}

TEST(SequenceKv, DropRangeUnlinksCoveredBlocksOfOneLayerWithoutMovingData) {
  BlockPool pool(make_layout(2, 1, 4), 20);
  SequenceKv seq(pool, /*stats_group=*/2);
  ASSERT_TRUE(seq.append(positions_range(0, 13)));  // 4 blocks per list
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 1, 2, 3}));
  EXPECT_EQ(ids_of(seq, 1, 0), (Ids{4, 5, 6, 7}));
  write_all(seq);
  const float* key_of_pos_12 = seq.key(0, 0, 12);

  // Only block 1 (positions 4..7) lies entirely inside [2, 9].
  EXPECT_EQ(seq.drop_range(0, 2, 9), 1u);
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 2, 3}));
  EXPECT_EQ(positions_of(seq, 0, 0), (Positions{0, 1, 2, 3, 8, 9, 10, 11, 12, 13}));
  EXPECT_EQ(ids_of(seq, 1, 0), (Ids{4, 5, 6, 7}));
  EXPECT_EQ(seq.num_slots(1, 0), 14u);
  EXPECT_EQ(pool.num_used_blocks(), 7u);
  EXPECT_EQ(pool.ref_count(1), 0u);
  EXPECT_EQ(seq.key(0, 0, 8), key_of_pos_12);  // same memory: nothing moved
  expect_contents_match_positions(seq);

  // Nothing lies entirely inside [3, 8].
  EXPECT_EQ(seq.drop_range(0, 3, 8), 0u);
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 2, 3}));

  // The full block 2 and the partial last block 3 both fall inside.
  EXPECT_EQ(seq.drop_range(0, 8, 13), 2u);
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0}));
  EXPECT_EQ(positions_of(seq, 0, 0), (Positions{0, 1, 2, 3}));
  EXPECT_EQ(pool.num_used_blocks(), 5u);
  expect_contents_match_positions(seq);

  // Layer 0 is full (4 slots), layer 1 has room: one block, the last freed (3).
  EXPECT_EQ(seq.blocks_needed(1), 1u);
  ASSERT_TRUE(seq.append(positions_range(14, 14)));
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 3}));
  EXPECT_EQ(ids_of(seq, 1, 0), (Ids{4, 5, 6, 7}));
  for (size_t k = 0; k < seq.stats_per_slot(); ++k) EXPECT_EQ(seq.slot_stats(0, 0, 4)[k], 0.0f);  // new stats start at 0

  const SequenceKv* all[] = {&seq};
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));
  EXPECT_EQ(seq.free_all(), 6u);
}

TEST(SequenceKv, DropRangeCoversEveryKvHeadOfTheLayer) {
  BlockPool pool(make_layout(1, 3, 4), 12);
  SequenceKv seq(pool);
  ASSERT_TRUE(seq.append(positions_range(0, 7)));
  EXPECT_EQ(seq.drop_range(0, 0, 3), 3u);
  for (uint32_t head = 0; head < 3; ++head) {
    EXPECT_EQ(positions_of(seq, 0, head), (Positions{4, 5, 6, 7}));
    EXPECT_EQ(seq.blocks(0, head).size(), 1u);
  }
  EXPECT_EQ(seq.num_blocks(), 3u);
  EXPECT_EQ(pool.num_used_blocks(), 3u);
}

TEST(SequenceKv, DropBlocksUnlinksAnySetOfBlocksOfOneListWithoutMovingData) {
  BlockPool pool(make_layout(1, 2, 4), 20);
  SequenceKv seq(pool, /*stats_group=*/2);
  ASSERT_TRUE(seq.append(positions_range(0, 17)));  // 5 blocks per list, the last holds 16, 17
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 1, 2, 3, 4}));
  write_all(seq);
  const float* key_of_pos_8 = seq.key(0, 0, 8);

  // Two holes, the second one next to the partial last block: blocks 1 and 3 go.
  const uint32_t drop[] = {1, 3};
  EXPECT_EQ(seq.drop_blocks(0, 0, drop), 2u);
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 2, 4}));
  EXPECT_EQ(positions_of(seq, 0, 0), (Positions{0, 1, 2, 3, 8, 9, 10, 11, 16, 17}));
  EXPECT_EQ(seq.num_slots(0, 1), 18u);  // the other KV head of the layer is untouched
  EXPECT_EQ(pool.num_used_blocks(), 8u);
  EXPECT_EQ(pool.ref_count(1), 0u);
  EXPECT_EQ(pool.ref_count(3), 0u);
  EXPECT_EQ(seq.key(0, 0, 4), key_of_pos_8);  // same memory: nothing moved
  expect_contents_match_positions(seq);

  // The partial last block can go too; then an append fills a fresh block behind the full ones.
  const uint32_t last[] = {2};
  EXPECT_EQ(seq.drop_blocks(0, 0, last), 1u);
  EXPECT_EQ(positions_of(seq, 0, 0), (Positions{0, 1, 2, 3, 8, 9, 10, 11}));
  EXPECT_EQ(seq.drop_blocks(0, 0, {}), 0u);
  ASSERT_TRUE(seq.append(positions_range(18, 18)));
  EXPECT_EQ(positions_of(seq, 0, 0), (Positions{0, 1, 2, 3, 8, 9, 10, 11, 18}));
  EXPECT_EQ(seq.blocks(0, 0).size(), 3u);

  const SequenceKv* all[] = {&seq};
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));
}

TEST(SequenceKvDeathTest, DropBlocksRejectsUnorderedOrMissingBlocks) {
  BlockPool pool(make_layout(1, 1, 4), 8);
  SequenceKv seq(pool);
  ASSERT_TRUE(seq.append(positions_range(0, 11)));
  const uint32_t unordered[] = {2, 1};
  EXPECT_DEATH(seq.drop_blocks(0, 0, unordered), "not strictly increasing");
  const uint32_t missing[] = {3};
  EXPECT_DEATH(seq.drop_blocks(0, 0, missing), "block 3 of a list with 3 blocks");
}

TEST(SequenceKv, CompactMovesKeptSlotsDownWithDataPositionsAndStats) {
  BlockPool pool(make_layout(1, 2, 4), 8);
  SequenceKv seq(pool, /*stats_group=*/1);
  ASSERT_TRUE(seq.append(positions_range(0, 9)));  // 3 blocks per list
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 1, 2}));
  EXPECT_EQ(ids_of(seq, 0, 1), (Ids{3, 4, 5}));
  write_all(seq);

  const std::vector<uint32_t> keep{1, 4, 5, 8, 9};
  EXPECT_EQ(seq.compact(0, 0, keep), 1u);
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{0, 1}));
  EXPECT_EQ(positions_of(seq, 0, 0), (Positions{1, 4, 5, 8, 9}));
  EXPECT_EQ(seq.num_slots(0, 1), 10u);  // the other head is untouched
  EXPECT_EQ(pool.num_used_blocks(), 5u);
  EXPECT_EQ(pool.ref_count(2), 0u);
  expect_contents_match_positions(seq);

  // Keeping a prefix moves nothing but still frees the tail.
  EXPECT_EQ(seq.compact(0, 1, std::vector<uint32_t>{0, 1, 2}), 2u);
  EXPECT_EQ(ids_of(seq, 0, 1), (Ids{3}));
  expect_contents_match_positions(seq);

  EXPECT_EQ(seq.compact(0, 0, {}), 2u);
  EXPECT_EQ(seq.num_slots(0, 0), 0u);
  EXPECT_EQ(pool.num_used_blocks(), 1u);

  // Appending after compaction continues in each list's own shape.
  // Head 0 (empty) needs a block for 2 slots, head 1 (3 + 2 slots) a second one.
  EXPECT_EQ(seq.blocks_needed(2), 2u);
  ASSERT_TRUE(seq.append(positions_range(10, 11)));
  EXPECT_EQ(ids_of(seq, 0, 0), (Ids{1}));  // the last freed (end of the freed span) first
  EXPECT_EQ(ids_of(seq, 0, 1), (Ids{3, 0}));
  const SequenceKv* all[] = {&seq};
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));
}

TEST(SequenceKv, CarriesOnlyTheStatisticsAskedForInSlotStatOrder) {
  BlockPool pool(make_layout(1, 2, 4), 16);
  SequenceKv seq(pool, /*stats_group=*/2, stat_bit(SlotStat::kWindowSum) | stat_bit(SlotStat::kAccumulated));
  EXPECT_EQ(seq.stats_carried(), stat_bit(SlotStat::kWindowSum) | stat_bit(SlotStat::kAccumulated));
  EXPECT_EQ(seq.stats_per_slot(), 4u);  // two statistics x G, not three
  EXPECT_EQ(seq.stat_offset(SlotStat::kWindowSum), 0u);
  EXPECT_EQ(seq.stat_offset(SlotStat::kAccumulated), 2u);
  ASSERT_TRUE(seq.append(positions_range(0, 9)));
  write_all(seq);
  EXPECT_EQ(seq.compact(0, 1, std::vector<uint32_t>{0, 3, 9}), 2u);  // statistics move with their slots
  expect_contents_match_positions(seq);
  auto child = seq.fork();
  ASSERT_TRUE(child.has_value());
  EXPECT_EQ(child->stats_carried(), seq.stats_carried());
  expect_contents_match_positions(*child);
  EXPECT_EQ(SequenceKv(pool).stats_carried(), 0u);  // no stats_group: nothing carried
}

TEST(SequenceKv, DropStatsReleasesThemAndLeavesKvAndLaterOperationsIntact) {
  BlockPool pool(make_layout(1, 2, 4), 8);
  SequenceKv seq(pool, /*stats_group=*/2);
  ASSERT_TRUE(seq.append(positions_range(0, 9)));
  write_all(seq);
  seq.drop_stats();
  EXPECT_FALSE(seq.has_stats());
  EXPECT_EQ(seq.stats_per_slot(), 0u);
  expect_contents_match_positions(seq);  // K, V and positions as they were
  // Compaction and appends go on without statistics.
  EXPECT_EQ(seq.compact(0, 0, std::vector<uint32_t>{1, 4, 5, 8, 9}), 1u);
  expect_contents_match_positions(seq);
  ASSERT_TRUE(seq.append(positions_range(10, 10)));
  EXPECT_EQ(seq.num_slots(0, 0), 6u);
  const SequenceKv* all[] = {&seq};
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));
}

TEST(SequenceKv, ForkSharesFullBlocksAndCopiesThePartialLastBlock) {
  BlockPool pool(make_layout(1, 2, 4), 12);
  SequenceKv parent(pool);
  ASSERT_TRUE(parent.append(positions_range(0, 5)));
  EXPECT_EQ(ids_of(parent, 0, 0), (Ids{0, 1}));
  EXPECT_EQ(ids_of(parent, 0, 1), (Ids{2, 3}));
  write_all(parent);

  std::optional<SequenceKv> child = parent.fork();
  ASSERT_TRUE(child.has_value());
  EXPECT_EQ(ids_of(*child, 0, 0), (Ids{0, 4}));
  EXPECT_EQ(ids_of(*child, 0, 1), (Ids{2, 5}));
  EXPECT_EQ(positions_of(*child, 0, 0), positions_of(parent, 0, 0));
  EXPECT_EQ(pool.ref_count(0), 2u);
  EXPECT_EQ(pool.ref_count(1), 1u);
  EXPECT_EQ(pool.ref_count(4), 1u);
  EXPECT_EQ(pool.num_used_blocks(), 6u);
  expect_contents_match_positions(*child);

  // The child's append writes its private copy; the parent's data stays.
  ASSERT_TRUE(child->append(positions_range(6, 6)));
  EXPECT_EQ(pool.num_used_blocks(), 6u);
  child->key(0, 0, 6)[0] = 7.0f;
  child->key(0, 0, 4)[0] = 9.0f;
  EXPECT_EQ(parent.key(0, 0, 4)[0], key_value(0, 0, 4, 0));

  const SequenceKv* all[] = {&parent, &*child};
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));

  // Unsharing head 0 of the child copies block 0 into a fresh block.
  EXPECT_EQ(child->unshare(0, 0), std::optional<size_t>(1));
  EXPECT_EQ(ids_of(*child, 0, 0), (Ids{6, 4}));
  EXPECT_EQ(pool.ref_count(0), 1u);
  EXPECT_EQ(child->key(0, 0, 0)[1], key_value(0, 0, 0, 1));
  EXPECT_EQ(child->unshare(0, 0), std::optional<size_t>(0));
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));

  EXPECT_EQ(parent.free_all(), 4u);
  EXPECT_EQ(pool.num_used_blocks(), 4u);  // block 2 is still the child's
  EXPECT_EQ(pool.ref_count(2), 1u);
  EXPECT_EQ(child->free_all(), 4u);
  EXPECT_EQ(pool.num_used_blocks(), 0u);
}

TEST(SequenceKv, AppendCopiesASharedPartlyFilledLastBlockFirst) {
  BlockPool pool(make_layout(1, 1, 4), 6);
  SequenceKv parent(pool);
  ASSERT_TRUE(parent.append(positions_range(0, 7)));  // blocks 0, 1, both full
  write_all(parent);
  std::optional<SequenceKv> child = parent.fork();
  ASSERT_TRUE(child.has_value());
  EXPECT_EQ(pool.ref_count(1), 2u);

  // Keeping a prefix writes nothing, so a shared block may remain: block 0, now partly filled.
  EXPECT_EQ(child->compact(0, 0, std::vector<uint32_t>{0, 1}), 1u);  // block 1 loses our reference only
  EXPECT_EQ(ids_of(*child, 0, 0), (Ids{0}));
  EXPECT_EQ(pool.ref_count(1), 1u);
  EXPECT_EQ(pool.num_used_blocks(), 2u);

  EXPECT_EQ(child->blocks_needed(1), 1u);  // the copy of block 0
  ASSERT_TRUE(child->append(positions_range(8, 8)));
  EXPECT_EQ(ids_of(*child, 0, 0), (Ids{2}));
  EXPECT_EQ(pool.ref_count(0), 1u);
  EXPECT_EQ(child->num_blocks(), 1u);
  child->key(0, 0, 2)[0] = -1.0f;
  expect_contents_match_positions(parent);  // slot 2 of block 0 is still the parent's position 2
  EXPECT_EQ(child->key(0, 0, 1)[0], key_value(0, 0, 1, 0));

  const SequenceKv* all[] = {&parent, &*child};
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));
}

TEST(SequenceKv, ForkReturnsNothingAndLeaksNothingWhenPoolIsShort) {
  BlockPool pool(make_layout(1, 2, 4), 5);
  SequenceKv parent(pool);
  ASSERT_TRUE(parent.append(positions_range(0, 5)));  // 4 blocks, 2 partial
  EXPECT_FALSE(parent.fork().has_value());
  EXPECT_EQ(pool.num_used_blocks(), 4u);
  for (BlockId id = 0; id < 4; ++id) EXPECT_EQ(pool.ref_count(id), 1u);

  // Full lists need no copy, so the fork succeeds with no free block at all.
  ASSERT_TRUE(parent.append(positions_range(6, 7)));
  std::optional<SequenceKv> child = parent.fork();
  ASSERT_TRUE(child.has_value());
  EXPECT_EQ(pool.num_used_blocks(), 4u);
  EXPECT_EQ(pool.ref_count(3), 2u);
}

TEST(SequenceKv, MoveTransfersOwnershipAndMovedFromReleasesNothing) {
  BlockPool pool(make_layout(2, 1, 4), 8);
  std::vector<SequenceKv> sequences;
  {
    SequenceKv seq(pool);
    ASSERT_TRUE(seq.append(positions_range(0, 4)));
    sequences.push_back(std::move(seq));
  }
  EXPECT_EQ(pool.num_used_blocks(), 4u);
  EXPECT_EQ(sequences[0].num_blocks(), 4u);

  SequenceKv other(pool);
  ASSERT_TRUE(other.append(positions_range(0, 0)));
  EXPECT_EQ(pool.num_used_blocks(), 6u);
  other = std::move(sequences[0]);  // releases other's 2 blocks
  EXPECT_EQ(pool.num_used_blocks(), 4u);
  EXPECT_EQ(other.num_slots(1, 0), 5u);
  sequences.clear();
  EXPECT_EQ(pool.num_used_blocks(), 4u);
}

TEST(SequenceKv, CountOnlyPoolSupportsEverythingButData) {
  BlockPool pool(make_layout(2, 2, 4), 100, BlockPool::Storage::kCountOnly);
  SequenceKv seq(pool, 2);
  ASSERT_TRUE(seq.append(positions_range(0, 9)));
  seq.slot_stats(1, 1, 9)[0] = 5.0f;
  EXPECT_EQ(seq.drop_range(0, 0, 3), 2u);
  EXPECT_EQ(seq.compact(1, 1, std::vector<uint32_t>{2, 9}), 2u);
  EXPECT_EQ(positions_of(seq, 1, 1), (Positions{2, 9}));
  EXPECT_EQ(seq.slot_stats(1, 1, 1)[0], 5.0f);
  std::optional<SequenceKv> child = seq.fork();
  ASSERT_TRUE(child.has_value());
  const SequenceKv* all[] = {&seq, &*child};
  EXPECT_TRUE(testing::pool_accounting_holds(pool, all));
}

TEST(SequenceKvDeathTest, KeyOnCountOnlyPoolIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(make_layout(1, 1, 4), 4, BlockPool::Storage::kCountOnly);
        SequenceKv seq(pool);
        PKV_CHECK(seq.append(positions_range(0, 0)));
        (void)seq.key(0, 0, 0);
      },
      "count-only");
}

TEST(SequenceKvDeathTest, CompactWithUnorderedOrOutOfRangeKeepIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto compact_with = [](std::vector<uint32_t> keep) {
    BlockPool pool(make_layout(1, 1, 4), 4);
    SequenceKv seq(pool);
    PKV_CHECK(seq.append(positions_range(0, 5)));
    seq.compact(0, 0, keep);
  };
  EXPECT_DEATH(compact_with({0, 3, 3}), "not strictly increasing");
  EXPECT_DEATH(compact_with({2, 1}), "not strictly increasing");
  EXPECT_DEATH(compact_with({0, 6}), "keep slot 6 of a list with 6 slots");
}

TEST(SequenceKvDeathTest, CompactWritingASharedBlockIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(make_layout(1, 1, 4), 8);
        SequenceKv parent(pool);
        PKV_CHECK(parent.append(positions_range(0, 7)));
        std::optional<SequenceKv> child = parent.fork();
        child->compact(0, 0, std::vector<uint32_t>{0, 5});
      },
      "shared by 2 owners");
}

}  // namespace
}  // namespace prunekv
