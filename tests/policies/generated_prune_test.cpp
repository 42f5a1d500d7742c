// Pruning during decode (select_generated): `topp`, `topp-blk` and `dbudget-l1` re-apply their
// rule to the generated positions [prompt_len, window_first) only, on hand-made window attention:
// the prompt (already pruned or not) and the window stay whatever their mass, and every slot's
// mass counts in the whole each head may lose epsilon of. The other policies do not prune
// generated tokens.
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

constexpr SlotStat kWs = SlotStat::kWindowSum;

// One list of one query head, blocks of 4: prompt 0..9 (its block 2 holds 8, 9 and the first
// generated positions 10, 11), generated 10..33, window 30..33 (W = 4): candidates 10..29.
// Window attention: the prompt 0.5, the window 0.3, candidates 0.2 as set below (total 1).
struct GeneratedFixture : PruneFixture {
  GeneratedFixture() : PruneFixture(1, 1, 1, 256, /*block_size=*/4) { fill(); }
  void fill();
};

void GeneratedFixture::fill() {
  PruneFixture& f = *this;
  f.append(0, 34);
  for (size_t slot = 0; slot < 10; ++slot) f.set_stat(0, 0, slot, kWs, 0, 0.05f);
  for (size_t slot = 30; slot < 34; ++slot) f.set_stat(0, 0, slot, kWs, 0, 0.075f);
  f.set_stat(0, 0, 13, kWs, 0, 0.15f);
  f.set_stat(0, 0, 21, kWs, 0, 0.04f);
  f.set_stat(0, 0, 26, kWs, 0, 0.01f);
}

GeneratedPruneView generated_view(const PruneFixture& f) { return {f.kv, 10, 30, f.num_query_heads()}; }

TEST(GeneratedPrune, OnlyTheThresholdFreeRulesPruneGeneratedTokens) {
  for (const char* spec : {"topp", "topp-blk", "dbudget-l1", "topp:eps=0.01"})
    EXPECT_TRUE(make_pruning_policy(spec)->prunes_generated()) << spec;
  for (const char* spec : {"full", "dbudget", "snapkv:0.5", "h2o:0.5", "streaming:0.5", "pyramidkv:0.5", "knorm:0.5"})
    EXPECT_FALSE(make_pruning_policy(spec)->prunes_generated()) << spec;
}

TEST(GeneratedPrune, TopPKeepsThePromptTheWindowAndTheFewestGeneratedTokensCoveringTheHead) {
  // eps = 0.02: need 0.98 of 1: forced 0.8, + 13 -> 0.95, + 21 -> 0.99. Position 26 (0.01) and
  // every massless candidate go; so would the prompt's massless tokens, but the prompt stays.
  GeneratedFixture f;
  f.set_stat(0, 0, 3, kWs, 0, 0.0f);
  f.set_stat(0, 0, 0, kWs, 0, 0.1f);
  const auto policy = detail::make_topp_policy(0.02);
  const PrunePlan plan = policy->select_generated(generated_view(f));
  EXPECT_TRUE(plan.cuts.empty());
  ASSERT_EQ(plan.keeps.size(), 1u);
  const size_t freed = apply_generated_prune_plan(plan, f.kv, generated_view(f));
  EXPECT_EQ(f.positions(0, 0), concat(concat(pos_range(0, 9), {13, 21}), pos_range(30, 33)));
  EXPECT_EQ(freed, 9u - 4u);  // 34 slots in 9 blocks, 16 slots in 4
  // eps = 0.005 keeps position 26 too (0.99 < 0.995).
  GeneratedFixture g;
  apply_generated_prune_plan(detail::make_topp_policy(0.005)->select_generated(generated_view(g)), g.kv,
                             generated_view(g));
  EXPECT_EQ(g.positions(0, 0), concat(concat(pos_range(0, 9), {13, 21, 26}), pos_range(30, 33)));
}

TEST(GeneratedPrune, KeepsEverythingWhenEveryCandidateCarriesMassAndEpsilonIsZero) {
  GeneratedFixture f;
  for (size_t slot = 10; slot < 30; ++slot) f.set_stat(0, 0, slot, kWs, 0, 0.001f);
  for (const auto& policy : {detail::make_topp_policy(0.0), detail::make_topp_block_policy(0.0),
                             detail::make_dbudget_l1_policy(0.0)}) {
    const PrunePlan plan = policy->select_generated(generated_view(f));
    EXPECT_EQ(apply_generated_prune_plan(plan, f.kv, generated_view(f)), 0u) << policy->name();
    EXPECT_EQ(f.positions(0, 0), pos_range(0, 33)) << policy->name();
  }
}

TEST(GeneratedPrune, TopPBlockDropsWholeGeneratedBlocksOnlyAndNeverAPromptOrWindowBlock) {
  // Blocks: 0..1 prompt, 2 = {8, 9, 10, 11} (prompt + generated: stays), 3 = 12..15 (0.15),
  // 4 = 16..19 (0), 5 = 20..23 (0.04), 6 = 24..27 (0.01), 7 = 28..31 (window: stays), 8 = 32..33.
  // Generated position 10 sits in a prompt block: its mass counts in the whole, its block stays.
  GeneratedFixture f;
  f.set_stat(0, 0, 10, kWs, 0, 0.5f);  // total 1.5: need 0.98 * 1.5 = 1.47 of it
  // forced: prompt 0.5 + 0.5 + window 0.3 = 1.3; + block 3 -> 1.45; + block 5 -> 1.49: done.
  const auto policy = detail::make_topp_block_policy(0.02);
  const PrunePlan plan = policy->select_generated(generated_view(f));
  ASSERT_EQ(plan.block_drops.size(), 1u);
  EXPECT_EQ(plan.block_drops[0].blocks, (std::vector<uint32_t>{4, 6}));
  EXPECT_EQ(apply_generated_prune_plan(plan, f.kv, generated_view(f)), 2u);
  EXPECT_EQ(f.positions(0, 0), concat(concat(pos_range(0, 15), pos_range(20, 23)), pos_range(28, 33)));
}

TEST(L1CutEndPosition, StopsBeforeTheFirstHeadLosesMoreThanEpsilonOrAtTheLimit) {
  // Two heads over n = 10, each summing to 1; candidates [3, 8).
  const std::vector<float> rows = {0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.1f, 0.1f, 0.1f, 0.1f, 0.2f,
                                   0.3f, 0.3f, 0.0f, 0.0f, 0.0f, 0.02f, 0.1f, 0.1f, 0.1f, 0.08f};
  const std::span<const float> head0 = std::span<const float>(rows).first(10);
  const std::span<const float> head1 = std::span<const float>(rows).subspan(10);
  EXPECT_EQ(detail::l1_cut_end_position(head0, 1, 10, 3, 8, 0.12), 5u);  // 0.05 + 0.05 <= 0.12 < 0.2
  EXPECT_EQ(detail::l1_cut_end_position(rows, 2, 10, 3, 8, 0.12), 5u);  // head 1 loses 0 there
  EXPECT_EQ(detail::l1_cut_end_position(rows, 2, 10, 3, 8, 0.01), 3u);  // head 0 stops at once
  EXPECT_EQ(detail::l1_cut_end_position(head0, 1, 10, 3, 8, 1.0), 8u);   // capped by the window
  EXPECT_EQ(detail::l1_cut_end_position(head1, 1, 10, 3, 8, 0.01), 5u);   // 0 + 0 <= 0.01 < 0.02
}

TEST(GeneratedPrune, DBudgetL1CutsTheOldestGeneratedTokensOfEachLayerAndFreesWholeBlocksOnly) {
  // eps = 0.05: cut positions 10.. while the lost mass stays <= 0.05: 10..12 are massless, 13
  // carries 0.15: the cut is [10, 12]; only whole blocks inside it go: none (block 3 holds 12..15,
  // block 2 holds prompt 8, 9). With 13's mass moved to 21 the cut is [10, 20]: blocks 3, 4 go.
  GeneratedFixture f;
  const auto policy = detail::make_dbudget_l1_policy(0.05);
  PrunePlan plan = policy->select_generated(generated_view(f));
  ASSERT_EQ(plan.cuts.size(), 1u);
  EXPECT_EQ(plan.cuts[0].first_pos, 10);
  EXPECT_EQ(plan.cuts[0].last_pos, 12);
  EXPECT_EQ(apply_generated_prune_plan(plan, f.kv, generated_view(f)), 0u);

  GeneratedFixture g;
  g.set_stat(0, 0, 13, kWs, 0, 0.0f);
  g.set_stat(0, 0, 21, kWs, 0, 0.19f);
  plan = policy->select_generated(generated_view(g));
  ASSERT_EQ(plan.cuts.size(), 1u);
  EXPECT_EQ(plan.cuts[0].last_pos, 20);
  EXPECT_EQ(apply_generated_prune_plan(plan, g.kv, generated_view(g)), 2u);
  EXPECT_EQ(g.positions(0, 0), concat(pos_range(0, 11), pos_range(20, 33)));
}

TEST(GeneratedPruneDeathTest, RefusesACutOutsideTheCandidatesAndAPolicyWithoutTheRule) {
  GeneratedFixture f;
  PrunePlan plan;
  plan.cuts.push_back({0, 8, 12});  // reaches into the prompt
  EXPECT_DEATH(apply_generated_prune_plan(plan, f.kv, generated_view(f)), "is not inside \\[10, 30\\)");
  EXPECT_DEATH(make_pruning_policy("snapkv:0.5")->select_generated(generated_view(f)), "does not prune generated");
}

}  // namespace
}  // namespace prunekv
