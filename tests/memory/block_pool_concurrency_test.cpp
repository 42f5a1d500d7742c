// Frees from several threads at once while the engine thread allocates: nothing is lost, no block
// is handed out while another thread still holds it, and the counters come out exact. Built and
// run under TSan in the concurrency configuration.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "memory/block_pool.h"

namespace prunekv {
namespace {

constexpr int kNoOwner = -1;
constexpr int kEngine = 1000;

KvLayout layout() { return KvLayout{.num_layers = 1, .num_kv_heads = 1, .head_dim = 4, .block_size = 16}; }

TEST(BlockPool, ConcurrentFreesOfDisjointSetsLoseNothingWhileEngineAllocates) {
  constexpr size_t kBlocks = 4096;
  constexpr int kWorkers = 4;
  constexpr size_t kPerWorker = 768;  // leaves 1024 blocks for the engine to churn through
  constexpr int kRounds = 20;
  BlockPool pool(layout(), kBlocks);
  // Who holds each block: set before a free is published, checked when the pool hands it out.
  std::unique_ptr<std::atomic<int>[]> owner(new std::atomic<int>[kBlocks]);
  for (size_t i = 0; i < kBlocks; ++i) owner[i].store(kNoOwner);
  std::atomic<size_t> handed_out_while_held{0};
  auto take = [&](BlockId id, int who) {
    int expected = kNoOwner;
    if (!owner[id].compare_exchange_strong(expected, who)) handed_out_while_held.fetch_add(1);
  };

  std::mt19937 rng(7);
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::vector<BlockId>> sets(kWorkers);
    for (int w = 0; w < kWorkers; ++w) {
      ASSERT_TRUE(pool.allocate(kPerWorker, sets[size_t(w)]));
      for (BlockId id : sets[size_t(w)]) take(id, w);
    }
    ASSERT_EQ(pool.num_used_blocks(), kWorkers * kPerWorker);

    std::atomic<bool> go{false};
    std::atomic<int> workers_done{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([&, w] {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        const std::vector<BlockId>& set = sets[size_t(w)];
        // Half one at a time, half in spans of 8: both free paths race.
        size_t i = 0;
        for (; i < set.size() / 2; ++i) {
          owner[set[i]].store(kNoOwner);
          pool.free(set[i]);
        }
        for (; i < set.size(); i += 8) {
          const size_t n = std::min<size_t>(8, set.size() - i);
          for (size_t j = i; j < i + n; ++j) owner[set[j]].store(kNoOwner);
          pool.free(std::span<const BlockId>(set).subspan(i, n));
        }
        workers_done.fetch_add(1, std::memory_order_release);
      });
    }
    go.store(true, std::memory_order_release);
    // The engine thread allocates and frees its own blocks meanwhile, picking up freed ones.
    std::vector<BlockId> engine_held;
    // Runs until every worker is done so allocation overlaps all of their frees.
    for (int k = 0; k < 2000 || workers_done.load(std::memory_order_acquire) < kWorkers; ++k) {
      const size_t n = std::uniform_int_distribution<size_t>(1, 16)(rng);
      std::vector<BlockId> got;
      if (pool.allocate(n, got)) {
        EXPECT_EQ(got.size(), n);
        for (BlockId id : got) take(id, kEngine);
        engine_held.insert(engine_held.end(), got.begin(), got.end());
      }
      if (engine_held.size() > 1500) {
        for (BlockId id : engine_held) owner[id].store(kNoOwner);
        pool.free(engine_held);
        engine_held.clear();
      }
    }
    for (std::thread& t : workers) t.join();
    EXPECT_EQ(pool.num_used_blocks(), engine_held.size());
    EXPECT_EQ(pool.num_free_blocks(), kBlocks - engine_held.size());
    for (BlockId id : engine_held) owner[id].store(kNoOwner);
    pool.free(engine_held);
  }
  EXPECT_EQ(handed_out_while_held.load(), 0u);
  EXPECT_EQ(pool.num_free_blocks(), kBlocks);
  // Everything comes back, each block exactly once.
  std::vector<BlockId> all;
  ASSERT_TRUE(pool.allocate(kBlocks, all));
  std::vector<bool> seen(kBlocks, false);
  for (BlockId id : all) {
    ASSERT_FALSE(seen[id]) << "block " << id << " twice on the free list";
    seen[id] = true;
  }
  pool.free(all);
}

TEST(BlockPool, ConcurrentReleasesOfSharedBlocksReturnEachBlockOnce) {
  constexpr size_t kBlocks = 1024;
  constexpr int kOwners = 4;
  BlockPool pool(layout(), kBlocks);
  for (int round = 0; round < 20; ++round) {
    std::vector<BlockId> ids;
    ASSERT_TRUE(pool.allocate(kBlocks, ids));
    for (int extra = 1; extra < kOwners; ++extra) pool.retain(ids);
    std::vector<std::thread> owners;
    for (int o = 0; o < kOwners; ++o)
      owners.emplace_back([&pool, &ids, o] {
        // Each owner drops its reference in a different order so last-reference races vary.
        if (o % 2 == 0) {
          pool.free(ids);
        } else {
          for (size_t i = ids.size(); i-- > 0;) pool.free(ids[i]);
        }
      });
    for (std::thread& t : owners) t.join();
    ASSERT_EQ(pool.num_free_blocks(), kBlocks);
    for (BlockId id : ids) ASSERT_EQ(pool.ref_count(id), 0u);
  }
}

}  // namespace
}  // namespace prunekv
