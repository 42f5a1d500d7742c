// Each fixed-budget policy keeps exactly the slots its definition names, on hand-made statistics
// and keys (the plans are applied, and the kept positions read back from memory).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "policies/policy_factories.h"
#include "policies/selection.h"
#include "policies/snapkv_select.h"
#include "tests/policies/prune_fixture.h"

namespace prunekv {
namespace {

using testing::concat;
using testing::pos_range;
using testing::PruneFixture;

TEST(FixedBudget, IsCeilOfRatioTimesPromptWithAFloorOfSinksPlusWindow) {
  EXPECT_EQ(detail::fixed_budget(0.5, 40), 20u);
  EXPECT_EQ(detail::fixed_budget(0.7, 100), 70u);  // not 71 from 0.7 * 100 rounding up
  EXPECT_EQ(detail::fixed_budget(0.3, 101), 31u);  // ceil(30.3)
  EXPECT_EQ(detail::fixed_budget(0.1, 50), 12u);   // floor: 4 sinks + window 8
  EXPECT_EQ(detail::fixed_budget(0.1, 9), 9u);     // never more than the prompt
  EXPECT_EQ(detail::fixed_budget(1.0, 333), 333u);
}

TEST(MaxPoolSame, TakesTheMaxOverSevenNeighboursWithinTheArray) {
  const std::vector<double> in = {0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0};
  const std::vector<double> expected = {1, 1, 1, 1, 1, 0, 5, 5, 5, 5, 5, 5};
  EXPECT_EQ(detail::max_pool_same(in, 7), expected);
}

TEST(StreamingPolicy, KeepsFourSinksAndTheMostRecentTokensInEveryLayer) {
  PruneFixture f(3, 2, 1);
  f.append(0, 40);
  const auto policy = detail::make_streaming_policy(0.5);  // budget 20: sinks + 16 recent
  const PrunePlan plan = policy->select(f.view(40));
  EXPECT_FALSE(plan.block_rounded);
  ASSERT_EQ(plan.cuts.size(), 3u);
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 40);
  for (uint32_t layer = 0; layer < 3; ++layer) {
    for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
      EXPECT_EQ(f.positions(layer, kv_head), concat(pos_range(0, 3), pos_range(24, 39)));
    }
  }
  EXPECT_DOUBLE_EQ(outcome.kept_fraction(), 0.5);
}

TEST(StreamingPolicy, KeepsEverythingWhenTheBudgetCoversThePrompt) {
  PruneFixture f(2, 1, 1);
  f.append(0, 12);
  EXPECT_TRUE(detail::make_streaming_policy(0.5)->select(f.view(12)).cuts.empty());
}

TEST(H2oPolicy, KeepsTheRecentHalfPlusHeavyHittersByGroupSummedAccumulation) {
  // N = 40, R = 0.5: budget 20 = 10 recent (30..39) + 10 heavy hitters among 0..29.
  PruneFixture f(1, 2, 2);
  f.append(0, 40);
  // KV head 0: the heavy hitters are even positions 0..18, split over its two query heads
  // (g = 0 carries position p, g = 1 the rest) so only the group sum ranks them first.
  // Odd positions get 0.5 from one query head only.
  for (size_t p = 0; p < 40; ++p) {
    if (p % 2 == 0 && p < 20) {
      f.set_stat(0, 0, p, SlotStat::kAccumulated, 0, 0.4f);
      f.set_stat(0, 0, p, SlotStat::kAccumulated, 1, 0.4f);
    } else {
      f.set_stat(0, 0, p, SlotStat::kAccumulated, p % 2, 0.5f);
    }
  }
  // KV head 1: accumulation grows with age (as H2O's does): the 10 oldest win.
  for (size_t p = 0; p < 40; ++p) {
    for (uint32_t g = 0; g < 2; ++g) f.set_stat(0, 1, p, SlotStat::kAccumulated, g, float(40 - p));
  }
  // The recent tokens are kept whatever their score: give them none.
  for (size_t p = 30; p < 40; ++p) {
    for (uint32_t g = 0; g < 2; ++g) f.set_stat(0, 0, p, SlotStat::kAccumulated, g, 0.0f);
  }
  const PrunePlan plan = detail::make_h2o_policy(0.5)->select(f.view(40));
  EXPECT_EQ(plan.keeps.size(), 2u);
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 40);
  std::vector<Pos> even;
  for (Pos p = 0; p < 20; p += 2) even.push_back(p);
  EXPECT_EQ(f.positions(0, 0), concat(even, pos_range(30, 39)));
  EXPECT_EQ(f.positions(0, 1), concat(pos_range(0, 9), pos_range(30, 39)));
  EXPECT_EQ(outcome.prompt_entries_kept, 40u);
}

// Hand-worked SnapKV example. N = 34, R = 0.5: budget 17 = window 26..33 + 9 older tokens.
// KV head 0, raw group-summed window scores: a ramp 0.001 * p plus spikes p10 = 5 (2.5 from each
// query head) and p12 = 4 (one query head). Max-pool 7 over 0..25:
//   p7..p13 -> 5 (windows reach p10), p14, p15 -> 4 (reach p12, not p10), the rest <= 0.025.
// Top 9 = p7..p15. Without pooling the top 9 would be p10, p12, p25, p24, ...
// KV head 1: one spike p20 = 5 -> pooled p17..p23 = 5; then p24, p25 (pool 0.025) beat p16
// (0.019).
TEST(SnapKvPolicy, KeepsTheWindowAndTheTopMaxPooledOlderTokensPerKvHead) {
  PruneFixture f(1, 2, 2);
  f.append(0, 34);
  for (size_t p = 0; p < 34; ++p) {
    for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
      f.set_stat(0, kv_head, p, SlotStat::kWindowSum, 0, 0.001f * float(p));
    }
  }
  f.set_stat(0, 0, 10, SlotStat::kWindowSum, 0, 2.5f);
  f.set_stat(0, 0, 10, SlotStat::kWindowSum, 1, 2.5f);
  f.set_stat(0, 0, 12, SlotStat::kWindowSum, 1, 4.0f);
  f.set_stat(0, 1, 20, SlotStat::kWindowSum, 0, 5.0f);
  // The window's own scores are irrelevant: make them huge so a bug that ranks them shows.
  for (size_t p = 26; p < 34; ++p) f.set_stat(0, 0, p, SlotStat::kWindowSum, 0, 100.0f);

  const auto policy = detail::make_snapkv_policy(0.5);
  EXPECT_EQ(policy->stats_window(), 8);
  const PrunePlan plan = policy->select(f.view(34));
  apply_prune_plan(plan, f.kv, 34);
  EXPECT_EQ(f.positions(0, 0), concat(pos_range(7, 15), pos_range(26, 33)));
  EXPECT_EQ(f.positions(0, 1), concat(pos_range(17, 25), pos_range(26, 33)));
}

TEST(SnapKvPolicy, NeverPrunesDecodeSlots) {
  PruneFixture f(1, 1, 1);
  f.append(0, 30);
  f.append(30, 2);  // decode tokens
  const PrunePlan plan = detail::make_snapkv_policy(0.4)->select(f.view(30));  // budget 12
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 30);
  // Scores all zero: ties go to the oldest, so p0..p3 + window 22..29 + decode 30, 31.
  EXPECT_EQ(f.positions(0, 0), concat(pos_range(0, 3), pos_range(22, 31)));
  EXPECT_EQ(outcome.prompt_entries_total, 30u);
  EXPECT_EQ(outcome.prompt_entries_kept, 12u);
}

TEST(PyramidKvPolicy, BudgetsDecreaseWithDepthAndAverageTheRatio) {
  {
    // 5 layers, N = 200, R = 0.5 (100): weights 1.5, 1.25, 1, 0.75, 0.5.
    const std::vector<size_t> budgets = detail::pyramid_layer_budgets(0.5, 200, 5);
    EXPECT_EQ(budgets, (std::vector<size_t>{150, 125, 100, 75, 50}));
  }
  {
    // R = 0.8: shares 240 and 200 reach N = 200 and are capped; the other 400 tokens go over
    // weights 1, 0.75, 0.5 (177.8, 133.3, 88.9, rounded up), so the mean stays 0.8 N = 160.
    const std::vector<size_t> budgets = detail::pyramid_layer_budgets(0.8, 200, 5);
    EXPECT_EQ(budgets, (std::vector<size_t>{200, 200, 178, 134, 89}));
    EXPECT_NEAR(std::accumulate(budgets.begin(), budgets.end(), 0.0) / 5.0, 160.0, 1.0);
  }
  EXPECT_EQ(detail::pyramid_layer_budgets(1.0, 77, 6), std::vector<size_t>(6, 77));
  // The floor: at least sinks + window per layer (shares 18, 12, 6).
  EXPECT_EQ(detail::pyramid_layer_budgets(0.1, 40, 3), (std::vector<size_t>{18, 12, 12}));
}

TEST(PyramidKvPolicy, KeepsEachLayersBudgetWithSnapKvSelection) {
  PruneFixture f(5, 1, 1);
  f.append(0, 200);
  const PrunePlan plan = detail::make_pyramidkv_policy(0.5)->select(f.view(200));
  apply_prune_plan(plan, f.kv, 200);
  const std::vector<size_t> expected = {150, 125, 100, 75, 50};
  for (uint32_t layer = 0; layer < 5; ++layer) {
    EXPECT_EQ(f.kv.num_slots(layer, 0), expected[layer]) << "layer " << layer;
    // The window always stays.
    EXPECT_EQ(f.positions(layer, 0).back(), 199);
  }
}

TEST(KnormPolicy, KeepsTheLowestKeyNormsPlusTheRecentWindow) {
  // N = 30, R = 0.5: budget 15 = window 22..29 + the 7 lowest key norms among 0..21.
  PruneFixture f(1, 2, 1);
  f.append(0, 30);
  ASSERT_TRUE(detail::make_knorm_policy(0.5)->needs_key_data());
  for (uint32_t kv_head = 0; kv_head < 2; ++kv_head) {
    for (size_t p = 0; p < 30; ++p) {
      float* key = f.kv.key(0, kv_head, p);
      // KV head 0: norm grows with position, so 0..6 are lowest. KV head 1: norm 3 except
      // positions 1, 5, 9, 13, 17, 19, 21, which get norm 1 (split over two components).
      const bool low = p == 1 || p == 5 || p == 9 || p == 13 || p == 17 || p == 19 || p == 21;
      key[0] = kv_head == 0 ? 1.0f + float(p) : (low ? 0.6f : 3.0f);
      key[1] = kv_head == 0 ? 0.0f : (low ? -0.8f : 0.0f);
      key[2] = key[3] = 0.0f;
    }
    // The window carries the largest norms and still stays.
    for (size_t p = 22; p < 30; ++p) f.kv.key(0, kv_head, p)[0] = 1000.0f;
  }
  const PrunePlan plan = detail::make_knorm_policy(0.5)->select(f.view(30));
  apply_prune_plan(plan, f.kv, 30);
  EXPECT_EQ(f.positions(0, 0), concat(pos_range(0, 6), pos_range(22, 29)));
  EXPECT_EQ(f.positions(0, 1), concat({1, 5, 9, 13, 17, 19, 21}, pos_range(22, 29)));
  // Compaction moved the keys with their positions.
  EXPECT_FLOAT_EQ(f.kv.key(0, 0, 6)[0], 7.0f);
  EXPECT_FLOAT_EQ(f.kv.key(0, 1, 0)[1], -0.8f);
}

}  // namespace
}  // namespace prunekv
