// apply_prune_plan frees exactly the expected blocks (whole blocks for block-rounded cuts,
// compaction for token-exact ones and keep-sets), leaks none, and reports the kept fractions.
#include <gtest/gtest.h>

#include <vector>

#include "policies/policy_factories.h"
#include "tests/policies/prune_fixture.h"

namespace prunekv {
namespace {

using testing::concat;
using testing::pos_range;
using testing::PruneFixture;

// 3 layers x 2 KV heads, 16-slot blocks, a 100-token prompt: 7 blocks per list, 42 in all.
struct ApplyFixture : PruneFixture {
  ApplyFixture() : PruneFixture(3, 2, 1, /*num_blocks=*/64) {
    append(0, 100);
    // key[0] = position, to check that compaction moves data with its slot.
    for (uint32_t layer = 0; layer < 3; ++layer) {
      for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
        for (size_t slot = 0; slot < 100; ++slot) kv.key(layer, kv_head, slot)[0] = float(slot);
      }
    }
  }
  void expect_keys_follow_positions() {
    for (uint32_t layer = 0; layer < 3; ++layer) {
      for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
        const auto positions = kv.positions(layer, kv_head);
        for (size_t slot = 0; slot < positions.size(); ++slot) {
          ASSERT_EQ(kv.key(layer, kv_head, slot)[0], float(positions[slot])) << layer << "/" << kv_head << "/" << slot;
        }
      }
    }
  }
};

TEST(ApplyPrunePlan, BlockRoundedCutFreesOnlyBlocksInsideTheRange) {
  ApplyFixture f;
  ASSERT_EQ(f.pool.num_used_blocks(), 42u);
  PrunePlan plan;
  plan.cuts.push_back({2, 4, 60});  // blocks 16..31 and 32..47 lie inside; 0..15, 48..63 do not
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 100);
  EXPECT_EQ(outcome.blocks_freed, 4u);
  EXPECT_EQ(f.pool.num_used_blocks(), 38u);
  for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
    EXPECT_EQ(f.positions(2, kv_head), concat(pos_range(0, 15), pos_range(48, 99)));
    EXPECT_EQ(f.positions(1, kv_head), pos_range(0, 99));
  }
  EXPECT_EQ(outcome.prompt_entries_total, 600u);
  EXPECT_EQ(outcome.prompt_entries_kept, 600u - 64u);
  EXPECT_EQ(outcome.prompt_blocks_before, 42u);
  EXPECT_EQ(outcome.prompt_blocks_after, 38u);
  EXPECT_DOUBLE_EQ(outcome.kept_fraction(), 536.0 / 600.0);
  EXPECT_DOUBLE_EQ(outcome.kept_block_fraction(), 38.0 / 42.0);
  f.expect_keys_follow_positions();
  EXPECT_EQ(f.kv.free_all(), 38u);
  EXPECT_EQ(f.pool.num_free_blocks(), f.pool.num_total_blocks());
}

TEST(ApplyPrunePlan, ExactCutCompactsAndFreesTheTail) {
  ApplyFixture f;
  PrunePlan plan;
  plan.block_rounded = false;
  plan.cuts.push_back({2, 4, 60});  // 57 go, 43 stay per list: 3 blocks instead of 7
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 100);
  EXPECT_EQ(outcome.blocks_freed, 8u);
  EXPECT_EQ(f.pool.num_used_blocks(), 34u);
  for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
    EXPECT_EQ(f.positions(2, kv_head), concat(pos_range(0, 3), pos_range(61, 99)));
  }
  EXPECT_EQ(outcome.prompt_entries_kept, 600u - 114u);
  EXPECT_EQ(outcome.prompt_blocks_after, 34u);
  f.expect_keys_follow_positions();
  f.kv.free_all();
  EXPECT_EQ(f.pool.num_free_blocks(), f.pool.num_total_blocks());
}

TEST(ApplyPrunePlan, KeepSetsCompactOneListEach) {
  ApplyFixture f;
  PrunePlan plan;
  plan.block_rounded = false;
  std::vector<uint32_t> keep_even;
  for (uint32_t slot = 0; slot < 100; slot += 2) keep_even.push_back(slot);
  plan.keeps.push_back({0, 1, keep_even});     // 50 stay: 4 blocks, 3 freed
  plan.keeps.push_back({1, 0, {0, 1, 2, 99}});  // 4 stay: 1 block, 6 freed
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 100);
  EXPECT_EQ(outcome.blocks_freed, 9u);
  EXPECT_EQ(f.kv.num_slots(0, 1), 50u);
  EXPECT_EQ(f.positions(1, 0), (std::vector<Pos>{0, 1, 2, 99}));
  EXPECT_EQ(f.kv.num_slots(0, 0), 100u);
  EXPECT_EQ(outcome.prompt_entries_kept, 600u - 50u - 96u);
  EXPECT_EQ(outcome.prompt_blocks_after, 42u - 9u);
  f.expect_keys_follow_positions();
  f.kv.free_all();
  EXPECT_EQ(f.pool.num_free_blocks(), f.pool.num_total_blocks());
}

TEST(ApplyPrunePlan, CountsOnlyPromptSlots) {
  // 20 prompt tokens (2 blocks) + 5 decode tokens per list; the decode slots stay and are not
  // counted as prompt entries or prompt blocks.
  PruneFixture f(1, 1, 1, 16);
  f.append(0, 20);
  f.append(20, 5);
  PrunePlan plan;
  plan.block_rounded = false;
  plan.cuts.push_back({0, 4, 15});
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 20);
  EXPECT_EQ(f.positions(0, 0), concat(pos_range(0, 3), pos_range(16, 24)));
  EXPECT_EQ(outcome.prompt_entries_total, 20u);
  EXPECT_EQ(outcome.prompt_entries_kept, 8u);
  EXPECT_EQ(outcome.prompt_blocks_before, 2u);
  EXPECT_EQ(outcome.prompt_blocks_after, 1u);
  EXPECT_EQ(outcome.blocks_freed, 1u);  // 25 slots in 2 blocks -> 13 slots in 1
}

TEST(ApplyPrunePlan, DBudgetBlockRoundedKeepsMoreTokensThanExactForTheSameCut) {
  // Zero statistics: dbudget evicts 4..98 in layer 2 (the last token stays). Block-rounded,
  // blocks 1..5 (16..95) go and 0..15 + 96..99 stay; exact keeps 0..3 + 99.
  for (bool exact : {false, true}) {
    ApplyFixture f;
    const auto policy = detail::make_dbudget_policy({.threshold = 0.01, .exact = exact});
    const PruneOutcome outcome = apply_prune_plan(policy->select(f.view(100)), f.kv, 100);
    for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
      EXPECT_EQ(f.positions(2, kv_head), exact ? concat(pos_range(0, 3), {99}) : concat(pos_range(0, 15), pos_range(96, 99)));
    }
    EXPECT_EQ(outcome.blocks_freed, exact ? 12u : 10u);
    EXPECT_EQ(outcome.prompt_entries_kept, exact ? 400u + 10u : 400u + 40u);
    f.expect_keys_follow_positions();
    f.kv.free_all();
    EXPECT_EQ(f.pool.num_free_blocks(), f.pool.num_total_blocks());
  }
}

TEST(FullPolicy, ChangesNothing) {
  ApplyFixture f;
  const auto policy = detail::make_full_policy();
  EXPECT_FALSE(policy->prunes());
  EXPECT_FALSE(policy->needs_stats());
  const PrunePlan plan = policy->select(f.view(100));
  EXPECT_TRUE(plan.cuts.empty());
  EXPECT_TRUE(plan.keeps.empty());
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 100);
  EXPECT_EQ(outcome.blocks_freed, 0u);
  EXPECT_DOUBLE_EQ(outcome.kept_fraction(), 1.0);
  EXPECT_DOUBLE_EQ(outcome.kept_block_fraction(), 1.0);
  EXPECT_EQ(f.pool.num_used_blocks(), 42u);
  for (uint32_t layer = 0; layer < 3; ++layer) {
    for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) EXPECT_EQ(f.positions(layer, kv_head), pos_range(0, 99));
  }
  f.expect_keys_follow_positions();
}

TEST(ApplyPrunePlan, EveryPolicyLeaksNoBlock) {
  for (const char* spec : {"full", "dbudget", "dbudget:exact", "streaming:0.3", "h2o:0.3", "snapkv:0.3",
                           "pyramidkv:0.3", "knorm:0.3"}) {
    SCOPED_TRACE(spec);
    ApplyFixture f;
    // Some structure in the statistics so the policies do differ; the old half carries almost
    // nothing, so dbudget frees blocks too.
    for (uint32_t layer = 0; layer < 3; ++layer) {
      for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
        for (size_t slot = 0; slot < 100; ++slot) {
          const float w = slot >= 50 && (slot * 7 + layer) % 11 == 0 ? 0.2f : 0.0001f;
          for (SlotStat stat : {SlotStat::kLastRow, SlotStat::kWindowSum, SlotStat::kAccumulated}) f.set_stat(layer, kv_head, slot, stat, 0, w);
        }
      }
    }
    const auto policy = make_pruning_policy(spec);
    const size_t used_before = f.pool.num_used_blocks();
    const PruneOutcome outcome = apply_prune_plan(policy->select(f.view(100)), f.kv, 100);
    EXPECT_EQ(f.pool.num_used_blocks() + outcome.blocks_freed, used_before);
    EXPECT_EQ(f.kv.num_blocks(), f.pool.num_used_blocks());
    EXPECT_EQ(outcome.prompt_blocks_before - outcome.prompt_blocks_after, outcome.blocks_freed);
    EXPECT_EQ(outcome.blocks_freed > 0, policy->prunes());
    f.expect_keys_follow_positions();
    f.kv.free_all();
    EXPECT_EQ(f.pool.num_free_blocks(), f.pool.num_total_blocks());
  }
}

}  // namespace
}  // namespace prunekv
