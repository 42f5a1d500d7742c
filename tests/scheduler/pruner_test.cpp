#include "scheduler/pruner.h"

#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <vector>

#include "memory/block_pool.h"
#include "memory/sequence_kv.h"

namespace prunekv::detail {
namespace {

constexpr uint32_t kGroup = 2;  // query heads per KV head

// A request whose 32-token prompt is computed into a sequence carrying statistics.
std::unique_ptr<Request> prefilled_request(BlockPool& pool, const PruningPolicy& policy, RequestId id) {
  auto request = std::make_unique<Request>(id, RequestSpec{}, nullptr);
  request->policy = &policy;
  request->num_prompt_tokens = 32;
  request->num_computed_tokens = 32;
  request->tokens.assign(32, 1);
  request->kv.emplace(pool, kGroup);
  std::vector<Pos> positions(32);
  std::iota(positions.begin(), positions.end(), Pos{0});
  EXPECT_TRUE(request->kv->append(positions));
  return request;
}

TEST(Pruner, PrunedRequestsFreeBlocksAndDropTheirStatisticsSeriallyAndInParallel) {
  const KvLayout layout{2, 2, 4, 4, KvDtype::kF32};
  BlockPool pool(layout, 256);
  const auto policy = make_pruning_policy("h2o:0.5");
  ASSERT_TRUE(policy->needs_stats());
  tbb::task_arena arena(2);
  std::vector<PruneResult> results;
  for (size_t n : {1, 3}) {  // one request runs inline, several in the arena
    std::vector<std::unique_ptr<Request>> owned;
    std::vector<Request*> requests;
    for (size_t i = 0; i < n; ++i) {
      owned.push_back(prefilled_request(pool, *policy, i));
      requests.push_back(owned.back().get());
      ASSERT_TRUE(owned.back()->kv->has_stats());
    }
    const size_t used_before = pool.num_used_blocks();
    prune_requests(requests, layout.num_kv_heads * kGroup, arena, results);
    ASSERT_EQ(results.size(), n);
    size_t freed = 0;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_TRUE(results[i].error.empty()) << results[i].error;
      EXPECT_EQ(results[i].outcome.kept_fraction(), 0.5);  // 16 of 32 prompt entries in every list
      freed += results[i].outcome.blocks_freed;
      // Pruning is once per prefill: the statistics are released, decode appends carry none.
      EXPECT_FALSE(requests[i]->kv->has_stats());
      EXPECT_EQ(requests[i]->kv->stats_per_slot(), 0u);
      const Pos next[] = {32};
      EXPECT_TRUE(requests[i]->kv->append(next));
      EXPECT_EQ(requests[i]->kv->num_slots(1, 1), 17u);
    }
    EXPECT_GT(freed, 0u);
    EXPECT_EQ(pool.num_used_blocks() + freed - n * layout.num_lists(), used_before);  // + one decode block per list
    for (auto& r : owned) r->kv->free_all();
    EXPECT_EQ(pool.num_used_blocks(), 0u);
  }
}

}  // namespace
}  // namespace prunekv::detail
