// The threshold-free policies `topp`, `topp-blk` and `dbudget-l1` keep exactly the sets their
// rules name, on hand-made window attention (the plans are applied and the kept positions read
// back from memory), and their stop rules give the known answers on plain arrays.
#include <gtest/gtest.h>

#include <vector>

#include "policies/attention_mass_rules.h"
#include "policies/policy_factories.h"
#include "tests/policies/prune_fixture.h"

namespace prunekv {
namespace {

using testing::concat;
using testing::pos_range;
using testing::PruneFixture;

std::vector<bool> flags(size_t n, std::initializer_list<size_t> set) {
  std::vector<bool> out(n, false);
  for (size_t i : set) out[i] = true;
  return out;
}

TEST(TopPKeep, AddsUnitsByTheirLargestHeadShareUntilEveryHeadKeepsAllButEpsilon) {
  // Two heads, six units, each column sums to 1; unit 0 is forced.
  const std::vector<double> masses = {
      0.5, 0.0,  // 0
      0.2, 0.1,  // 1: share 0.2
      0.1, 0.6,  // 2: share 0.6
      0.1, 0.1,  // 3: share 0.1
      0.1, 0.2,  // 4: share 0.2 (tied with 1: the lower index ranks first)
      0.0, 0.0,  // 5
  };
  const std::vector<bool> forced = flags(6, {0});
  // Need 0.75 each: + 2 -> (0.6, 0.6), + 1 -> (0.8, 0.7), + 4 -> (0.9, 0.9).
  EXPECT_EQ(detail::top_p_keep(masses, 2, forced, 0.25), flags(6, {0, 1, 2, 4}));
  // Need 0.5 each: unit 2 alone lifts head 1 from 0 to 0.6.
  EXPECT_EQ(detail::top_p_keep(masses, 2, forced, 0.5), flags(6, {0, 2}));
  // Nothing to cover when the forced units hold enough already.
  EXPECT_EQ(detail::top_p_keep(masses, 2, flags(6, {0, 2}), 0.5), flags(6, {0, 2}));
}

TEST(TopPKeep, BreaksTiesTowardTheOlderUnitAndIgnoresHeadsWithoutMass) {
  // One head: 0.5 forced, two candidates of 0.25; need 0.7, so one of them suffices.
  EXPECT_EQ(detail::top_p_keep(std::vector<double>{0.5, 0.25, 0.25}, 1, flags(3, {0}), 0.3), flags(3, {0, 1}));
  // A head with no mass at all is covered from the start.
  EXPECT_EQ(detail::top_p_keep(std::vector<double>(8, 0.0), 2, flags(4, {}), 0.001), flags(4, {}));
}

TEST(L1CutEndBlock, StopsBeforeTheFirstHeadLosesMoreThanEpsilonOrAtTheWindow) {
  // n = 100, blocks of 16, window 32: b is at most (100 - 32) / 16 = 4.
  const size_t n = 100;
  std::vector<float> uniform(n, 0.01f);  // total 1; blocks 1..b-1 carry 0.16 (b - 1)
  std::vector<float> peaked(n, 0.0f);
  peaked[40] = 1.0f;                     // block 2
  std::vector<float> both = uniform;
  both.insert(both.end(), peaked.begin(), peaked.end());

  EXPECT_EQ(detail::l1_cut_end_block(uniform, 1, n, 16, 32, 0.35), 3u);  // 0.32 <= 0.35 < 0.48
  EXPECT_EQ(detail::l1_cut_end_block(uniform, 1, n, 16, 32, 0.9), 4u);   // capped by the window
  EXPECT_EQ(detail::l1_cut_end_block(peaked, 1, n, 16, 32, 0.35), 2u);   // block 2 holds all of it
  EXPECT_EQ(detail::l1_cut_end_block(both, 2, n, 16, 32, 0.35), 2u);     // every head must agree
  EXPECT_EQ(detail::l1_cut_end_block(uniform, 1, n, 16, 32, 0.1), 1u);   // not even block 1
  EXPECT_EQ(detail::l1_cut_end_block(std::vector<float>(20, 0.0f), 1, 20, 16, 20, 0.5), 1u);  // all window
}

// One layer, two KV heads of two query heads each, N = 48: window 16..47, candidates 4..15.
// Every query head's window attention sums to 1.
void set_two_head_attention(PruneFixture& f) {
  f.append(0, 48);
  for (size_t slot = 16; slot < 48; ++slot) {
    f.set_stat(0, 0, slot, SlotStat::kWindowSum, 0, 0.02f);  // 0.64 in the window
    f.set_stat(0, 0, slot, SlotStat::kWindowSum, 1, 0.03f);  // 0.96
    f.set_stat(0, 1, slot, SlotStat::kWindowSum, 0, 0.5f / 32);
    f.set_stat(0, 1, slot, SlotStat::kWindowSum, 1, 1.0f / 32);
  }
  f.set_stat(0, 0, 5, SlotStat::kWindowSum, 0, 0.3f);
  f.set_stat(0, 0, 9, SlotStat::kWindowSum, 0, 0.05f);
  f.set_stat(0, 0, 12, SlotStat::kWindowSum, 0, 0.01f);
  f.set_stat(0, 0, 9, SlotStat::kWindowSum, 1, 0.04f);
  f.set_stat(0, 1, 7, SlotStat::kWindowSum, 0, 0.5f);
}

TEST(TopPPolicy, KeepsSinksWindowAndTheFewestTokensCoveringEveryQueryHead) {
  // The default eps = 0.001: every token carrying mass stays, each list decides alone.
  PruneFixture f(1, 2, 2);
  set_two_head_attention(f);
  const PrunePlan plan = make_pruning_policy("topp")->select(f.view(48));
  EXPECT_FALSE(plan.block_rounded);
  EXPECT_TRUE(plan.cuts.empty());
  ASSERT_EQ(plan.keeps.size(), 2u);
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 48);
  EXPECT_EQ(f.positions(0, 0), concat(concat(pos_range(0, 3), {5, 9, 12}), pos_range(16, 47)));
  EXPECT_EQ(f.positions(0, 1), concat(concat(pos_range(0, 3), {7}), pos_range(16, 47)));
  EXPECT_EQ(outcome.prompt_entries_kept, 39u + 37u);
  // The statistics moved with their tokens: position 7 is slot 4 of KV head 1 now.
  const size_t window_sum_g0 = size_t{static_cast<uint32_t>(SlotStat::kWindowSum)} * 2;
  EXPECT_EQ(f.kv.slot_stats(0, 1, 4)[window_sum_g0], 0.5f);

  // eps = 0.1: query head (0, g0) needs 0.9: the window's 0.64 plus position 5's 0.3.
  PruneFixture g(1, 2, 2);
  set_two_head_attention(g);
  apply_prune_plan(detail::make_topp_policy(0.1)->select(g.view(48)), g.kv, 48);
  EXPECT_EQ(g.positions(0, 0), concat(concat(pos_range(0, 3), {5}), pos_range(16, 47)));
  EXPECT_EQ(g.positions(0, 1), concat(concat(pos_range(0, 3), {7}), pos_range(16, 47)));
}

TEST(TopPPolicy, KeepsEverythingWhenThePromptIsAllSinksAndWindow) {
  PruneFixture f(2, 1, 1);
  f.append(0, 30);
  for (size_t slot = 0; slot < 30; ++slot) f.set_stat(0, 0, slot, SlotStat::kWindowSum, 0, slot == 10 ? 0.0f : 1.0f);
  const PrunePlan plan = make_pruning_policy("topp")->select(f.view(30));
  EXPECT_TRUE(plan.keeps.empty());
}

TEST(TopPBlockPolicy, UnlinksTheLeastAttendedWholeBlocksOfEachList) {
  // N = 100 in blocks of 16: block 0 (sinks) and blocks 4..6 (window 68..99) stay; 1..3 compete.
  PruneFixture f(1, 1, 1);
  f.append(0, 100);
  for (size_t slot = 68; slot < 100; ++slot) f.set_stat(0, 0, slot, SlotStat::kWindowSum, 0, 0.02f);  // 0.64
  f.set_stat(0, 0, 0, SlotStat::kWindowSum, 0, 0.1f);
  f.set_stat(0, 0, 40, SlotStat::kWindowSum, 0, 0.25f);   // block 2
  f.set_stat(0, 0, 20, SlotStat::kWindowSum, 0, 0.005f);  // block 1
  f.set_stat(0, 0, 50, SlotStat::kWindowSum, 0, 0.005f);  // block 3, tied with block 1
  const float* key_of_pos_64 = f.kv.key(0, 0, 64);

  // eps = 0.006: need 0.994: forced 0.74, + block 2 -> 0.99, + block 1 (the older of the tie) -> 0.995.
  const auto policy = detail::make_topp_block_policy(0.006);
  const PrunePlan plan = policy->select(f.view(100));
  EXPECT_TRUE(plan.keeps.empty());
  ASSERT_EQ(plan.block_drops.size(), 1u);
  EXPECT_EQ(plan.block_drops[0].blocks, (std::vector<uint32_t>{3}));
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 100);
  EXPECT_EQ(outcome.blocks_freed, 1u);
  EXPECT_EQ(f.positions(0, 0), concat(pos_range(0, 47), pos_range(64, 99)));
  EXPECT_EQ(f.kv.key(0, 0, 48), key_of_pos_64);  // whole blocks: no data moved
  const size_t window_sum = static_cast<uint32_t>(SlotStat::kWindowSum);
  EXPECT_EQ(f.kv.slot_stats(0, 0, 52)[window_sum], 0.02f);  // position 68: statistics followed
  EXPECT_EQ(f.kv.slot_stats(0, 0, 40)[window_sum], 0.25f);

  // The default eps = 0.003 needs 0.997: block 3 stays too.
  PruneFixture g(1, 1, 1);
  g.append(0, 100);
  for (size_t slot = 0; slot < 100; ++slot) g.set_stat(0, 0, slot, SlotStat::kWindowSum, 0, slot >= 68 ? 0.02f : 0.0f);
  g.set_stat(0, 0, 20, SlotStat::kWindowSum, 0, 0.01f);  // block 1 carries 0.01 of 0.65
  EXPECT_EQ(make_pruning_policy("topp-blk")->select(g.view(100)).block_drops.at(0).blocks,
            (std::vector<uint32_t>{2, 3}));
}

TEST(DBudgetL1Policy, CutsEachLayerOldestFirstWhileEveryHeadLosesAtMostEpsilon) {
  // Two layers, one KV head of two query heads, N = 100: the cut ends at block 4 at most.
  PruneFixture f(2, 1, 2);
  f.append(0, 100);
  for (size_t slot = 0; slot < 100; ++slot) {
    for (uint32_t g = 0; g < 2; ++g) {
      f.set_stat(0, 0, slot, SlotStat::kWindowSum, g, 0.01f);  // layer 0: diffuse, block 1 alone is 0.16
      f.set_stat(1, 0, slot, SlotStat::kWindowSum, g, slot >= 68 ? 0.03f : 0.0f);
    }
  }
  f.set_stat(1, 0, 0, SlotStat::kWindowSum, 0, 0.04f);
  f.set_stat(1, 0, 50, SlotStat::kWindowSum, 1, 0.02f);  // block 3: more than 0.01 of head 1's 0.98
  const PrunePlan plan = make_pruning_policy("dbudget-l1")->select(f.view(100));
  EXPECT_TRUE(plan.block_rounded);
  ASSERT_EQ(plan.cuts.size(), 1u);
  EXPECT_EQ(plan.cuts[0].layer, 1u);
  EXPECT_EQ(plan.cuts[0].first_pos, 16);
  EXPECT_EQ(plan.cuts[0].last_pos, 47);
  const PruneOutcome outcome = apply_prune_plan(plan, f.kv, 100);
  EXPECT_EQ(outcome.blocks_freed, 2u);
  EXPECT_EQ(f.positions(0, 0), pos_range(0, 99));
  EXPECT_EQ(f.positions(1, 0), concat(pos_range(0, 15), pos_range(48, 99)));
}

}  // namespace
}  // namespace prunekv
