#include "memory/block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/error.h"
#include "common/large_buffer.h"
#include "memory/block_pool_core.h"
#include "memory/free_block_stack.h"

namespace prunekv {
namespace {

KvLayout tiny_layout() { return KvLayout{.num_layers = 1, .num_kv_heads = 1, .head_dim = 4, .block_size = 16}; }

void expect_counters(const BlockPool& pool, size_t used, size_t free) {
  EXPECT_EQ(pool.num_used_blocks(), used);
  EXPECT_EQ(pool.num_free_blocks(), free);
  EXPECT_EQ(pool.num_total_blocks(), used + free);
}

TEST(BlockPool, ScriptedAllocateFreeGivesExactIdsAndCounters) {
  BlockPool pool(tiny_layout(), 11);
  expect_counters(pool, 0, 11);

  std::vector<BlockId> a;
  ASSERT_TRUE(pool.allocate(4, a));
  EXPECT_EQ(a, (std::vector<BlockId>{0, 1, 2, 3}));  // lowest ids first on a fresh pool
  expect_counters(pool, 4, 7);

  std::vector<BlockId> b;
  ASSERT_TRUE(pool.allocate(7, b));
  EXPECT_EQ(b, (std::vector<BlockId>{4, 5, 6, 7, 8, 9, 10}));
  expect_counters(pool, 11, 0);
  EXPECT_DOUBLE_EQ(pool.usage(), 1.0);

  // Short: all or nothing, the output untouched.
  std::vector<BlockId> c{42};
  EXPECT_FALSE(pool.allocate(1, c));
  EXPECT_EQ(c, (std::vector<BlockId>{42}));
  expect_counters(pool, 11, 0);

  pool.free(2);
  pool.free(std::span<const BlockId>(b).subspan(0, 3));  // 4, 5, 6
  expect_counters(pool, 7, 4);

  // Last freed is reused first.
  c.clear();
  ASSERT_TRUE(pool.allocate(3, c));
  EXPECT_EQ(c, (std::vector<BlockId>{6, 5, 4}));
  expect_counters(pool, 10, 1);

  EXPECT_FALSE(pool.allocate(2, c));
  EXPECT_EQ(c.size(), 3u);
  expect_counters(pool, 10, 1);

  ASSERT_TRUE(pool.allocate(1, c));
  EXPECT_EQ(c.back(), 2u);
  expect_counters(pool, 11, 0);

  // Held now: 0, 1, 3 (from a), 7..10 (from b), 6, 5, 4, 2 (c).
  pool.free(std::vector<BlockId>{0, 1, 3});
  expect_counters(pool, 8, 3);
  pool.free(std::span<const BlockId>(b).subspan(3));
  expect_counters(pool, 4, 7);
  pool.free(c);
  expect_counters(pool, 0, 11);
}

TEST(BlockPool, AnArenaLargerThanTheMachineIsAConfigErrorNotACrash) {
  // 268 MB blocks x 1M = 268 TB: no machine maps that, so the allocation itself fails.
  const KvLayout huge{.num_layers = 1, .num_kv_heads = 1, .head_dim = 8192, .block_size = 4096};
  try {
    BlockPool pool(huge, 1'000'000);
    FAIL() << "a 268 TB arena was allocated";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ask for less KV memory"), std::string::npos) << e.what();
  }
  // The same pool without storage (the simulator's) needs no arena and works.
  BlockPool counted(huge, 1'000'000, BlockPool::Storage::kCountOnly);
  EXPECT_EQ(counted.num_free_blocks(), 1'000'000u);
}

TEST(BlockPool, BookkeepingLargerThanTheMachineIsAConfigErrorBeforeAnythingIsAllocated) {
  // A count-only pool holds 8 bytes per block: ask for one block more than physical memory
  // covers (the simulator's pool was killed by the OOM killer at such sizes while filling it).
  const uint64_t ram = physical_memory_bytes();
  if (ram == 0 || ram / 8 + 1 >= kInvalidBlock) GTEST_SKIP() << "physical memory unknown or above 32 GiB";
  try {
    BlockPool pool(tiny_layout(), ram / 8 + 1, BlockPool::Storage::kCountOnly);
    FAIL() << "a pool whose bookkeeping exceeds physical memory was built";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("more than this machine's"), std::string::npos) << e.what();
  }
}

TEST(BlockPool, AllocateZeroSucceedsWithoutChange) {
  BlockPool pool(tiny_layout(), 3);
  std::vector<BlockId> out;
  EXPECT_TRUE(pool.allocate(0, out));
  EXPECT_TRUE(out.empty());
  expect_counters(pool, 0, 3);
}

TEST(BlockPool, RetainKeepsBlockUntilLastReferenceIsFreed) {
  BlockPool pool(tiny_layout(), 4);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.allocate(2, ids));
  EXPECT_EQ(pool.ref_count(0), 1u);
  pool.retain(0);
  pool.retain(std::span<const BlockId>(ids));
  EXPECT_EQ(pool.ref_count(0), 3u);
  EXPECT_EQ(pool.ref_count(1), 2u);
  expect_counters(pool, 2, 2);

  pool.free(0);
  pool.free(0);
  EXPECT_EQ(pool.ref_count(0), 1u);
  expect_counters(pool, 2, 2);
  pool.free(0);
  EXPECT_EQ(pool.ref_count(0), 0u);
  expect_counters(pool, 1, 3);
  pool.free(ids[1]);
  pool.free(ids[1]);
  expect_counters(pool, 0, 4);
}

TEST(BlockPool, ArenaIsAlignedAndBlocksAreDisjoint) {
  const KvLayout layout = tiny_layout();
  BlockPool pool(layout, 5);
  ASSERT_TRUE(pool.has_storage());
  EXPECT_EQ(pool.arena_bytes(), 5 * layout.bytes_per_block());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pool.block_data(0)) % 64, 0u);
  for (BlockId id = 1; id < 5; ++id)
    EXPECT_EQ(pool.block_data(id) - pool.block_data(id - 1), static_cast<ptrdiff_t>(layout.bytes_per_block()));
}

TEST(BlockPool, CommitMemoryZeroesTheWholeArenaAndLeavesCountersAlone) {
  const KvLayout layout = tiny_layout();
  BlockPool pool(layout, 3);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.allocate(1, ids));
  for (BlockId id = 0; id < 3; ++id) std::memset(pool.block_data(id), 0x5a, layout.bytes_per_block());
  pool.commit_memory();
  for (size_t i = 0; i < pool.arena_bytes(); ++i) ASSERT_EQ(pool.block_data(0)[i], std::byte{0}) << "byte " << i;
  expect_counters(pool, 1, 2);
  pool.free(ids);

  BlockPool count_only(layout, 3, BlockPool::Storage::kCountOnly);
  count_only.commit_memory();  // nothing to map
  expect_counters(count_only, 0, 3);

  // An arena of several 2 MiB pieces and a partial one, committed by as many threads as there are.
  const KvLayout wide{1, 1, 64, 16, KvDtype::kF32};  // 8 KiB blocks
  BlockPool large(wide, 700);                         // 5.47 MiB
  std::memset(large.block_data(0), 0x5a, large.arena_bytes());
  large.commit_memory();
  const std::byte* data = large.block_data(0);
  const auto* nonzero = std::find_if(data, data + large.arena_bytes(), [](std::byte b) { return b != std::byte{0}; });
  EXPECT_EQ(nonzero - data, static_cast<ptrdiff_t>(large.arena_bytes())) << "first byte left unzeroed";
}

TEST(BlockPool, CountOnlyPoolKeepsCountersWithoutArena) {
  BlockPool pool(tiny_layout(), 10'000'000, BlockPool::Storage::kCountOnly);
  EXPECT_FALSE(pool.has_storage());
  EXPECT_EQ(pool.arena_bytes(), 0u);
  std::vector<BlockId> ids;
  ASSERT_TRUE(pool.allocate(9'999'999, ids));
  EXPECT_EQ(ids.back(), 9'999'998u);
  EXPECT_FALSE(pool.allocate(2, ids));
  expect_counters(pool, 9'999'999, 1);
  pool.free(ids);
  expect_counters(pool, 0, 10'000'000);
}

TEST(BlockPool, RejectsInvalidLayout) {
  KvLayout layout = tiny_layout();
  layout.head_dim = 0;
  EXPECT_THROW(BlockPool(layout, 4), ConfigError);
}

TEST(BlockPoolDeathTest, DoubleFreeIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(tiny_layout(), 2, BlockPool::Storage::kCountOnly);
        std::vector<BlockId> ids;
        PKV_CHECK(pool.allocate(1, ids));
        pool.free(ids[0]);
        pool.free(ids[0]);
      },
      "double free");
}

TEST(BlockPoolDeathTest, FreeOfNeverAllocatedBlockIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(tiny_layout(), 4, BlockPool::Storage::kCountOnly);
        std::vector<BlockId> ids;
        PKV_CHECK(pool.allocate(1, ids));  // block 0
        pool.free(3);
      },
      "free of block 3 which is not allocated");
}

TEST(BlockPoolDeathTest, FreeOutOfRangeIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(tiny_layout(), 4, BlockPool::Storage::kCountOnly);
        pool.free(4);
      },
      "outside the pool of 4 blocks");
}

TEST(BlockPoolDeathTest, RetainOfFreeBlockIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(tiny_layout(), 4, BlockPool::Storage::kCountOnly);
        pool.retain(1);
      },
      "retain of block 1 which is not allocated");
}

TEST(BlockPoolDeathTest, DestroyingPoolWithBlocksInUseIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(tiny_layout(), 4);
        std::vector<BlockId> ids;
        PKV_CHECK(pool.allocate(3, ids));
      },
      "destroyed with 3 of 4 blocks still in use");
}

TEST(BlockPoolDeathTest, BlockDataOnCountOnlyPoolIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(tiny_layout(), 4, BlockPool::Storage::kCountOnly);
        (void)pool.block_data(0);
      },
      "count-only");
}

// Both free lists behind the same scripted sequence: identical ids, so the benchmark compares
// equal behaviour.
template <class Stack>
class FreeStackTest : public ::testing::Test {};
using StackTypes = ::testing::Types<detail::AtomicFreeStack, detail::MutexFreeStack>;
TYPED_TEST_SUITE(FreeStackTest, StackTypes);

TYPED_TEST(FreeStackTest, PopsLowestFirstAndReusesLastPushed) {
  TypeParam stack(5);
  std::vector<uint32_t> out;
  ASSERT_TRUE(stack.pop(3, out));
  EXPECT_EQ(out, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(stack.size(), 2u);
  EXPECT_FALSE(stack.pop(3, out));
  EXPECT_EQ(out.size(), 3u);

  detail::FreeChain chain;
  stack.chain_add(chain, 1);
  stack.chain_add(chain, 0);
  stack.push(chain);
  EXPECT_EQ(stack.size(), 4u);
  out.clear();
  ASSERT_TRUE(stack.pop(4, out));
  EXPECT_EQ(out, (std::vector<uint32_t>{0, 1, 3, 4}));
  EXPECT_EQ(stack.size(), 0u);
  EXPECT_FALSE(stack.pop(1, out));
}

}  // namespace
}  // namespace prunekv
