// Each policy asks the forward step for only the statistics it reads (needed_stats()); pruning
// with that request must give exactly the plan that recording every statistic gives, and the
// statistics it did not ask for stay zero.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "policies/pruning_policy.h"
#include "tests/testing/paged_runner.h"
#include "tests/testing/random_model.h"

namespace prunekv {
namespace {

void expect_same_plan(const PrunePlan& a, const PrunePlan& b) {
  EXPECT_EQ(a.block_rounded, b.block_rounded);
  ASSERT_EQ(a.cuts.size(), b.cuts.size());
  for (size_t i = 0; i < a.cuts.size(); ++i) {
    EXPECT_EQ(a.cuts[i].layer, b.cuts[i].layer) << "cut " << i;
    EXPECT_EQ(a.cuts[i].first_pos, b.cuts[i].first_pos) << "cut " << i;
    EXPECT_EQ(a.cuts[i].last_pos, b.cuts[i].last_pos) << "cut " << i;
  }
  ASSERT_EQ(a.keeps.size(), b.keeps.size());
  for (size_t i = 0; i < a.keeps.size(); ++i) {
    EXPECT_EQ(a.keeps[i].layer, b.keeps[i].layer) << "keep " << i;
    EXPECT_EQ(a.keeps[i].kv_head, b.keeps[i].kv_head) << "keep " << i;
    EXPECT_EQ(a.keeps[i].keep_slots, b.keeps[i].keep_slots) << "keep " << i;
  }
}

TEST(StatsRequest, EveryPolicyPrunesAlikeWithOnlyTheStatisticsItAsksFor) {
  testing::RandomModelShape shape;
  shape.dim = 48;  // 6 query heads of 8 over 2 KV heads: G = 3
  shape.num_heads = 6;
  shape.num_kv_heads = 2;
  shape.num_layers = 4;
  auto model = testing::make_random_model(shape, 17);
  const ModelConfig& c = model->config;
  std::mt19937_64 rng(3);
  std::vector<TokenId> prompt(90);
  for (auto& t : prompt) t = static_cast<TokenId>(rng() % c.vocab_size);
  const auto n = static_cast<int32_t>(prompt.size());

  for (const std::string spec : {"dbudget", "dbudget:exact", "dbudget:T=0.05", "h2o:0.5", "snapkv:0.5",
                                 "pyramidkv:0.5"}) {
    SCOPED_TRACE(spec);
    const auto policy = make_pruning_policy(spec);
    const StatsRequest own = policy->stats_request(n);
    ASSERT_NE(own.stats, 0u);
    ASSERT_NE(own.stats, kAllSlotStats);  // one statistic each
    const StatsRequest all{n, policy->stats_window()};
    // Sequence 0 asks for its own statistics, sequence 1 for all; the same chunks, same steps.
    testing::PagedRunner runner(*model, 16, 1024, 2, /*with_stats=*/true);
    runner.add_sequence();
    runner.add_sequence();
    for (size_t begin = 0; begin < prompt.size(); begin += 32) {
      const std::vector<TokenId> chunk(prompt.begin() + std::ptrdiff_t(begin),
                                       prompt.begin() + std::ptrdiff_t(std::min(prompt.size(), begin + 32)));
      const bool last = begin + 32 >= prompt.size();
      runner.step({{0, chunk, last, own}, {1, chunk, last, all}});
    }
    const SequenceKv& mine = runner.kv(0);
    double requested_mass = 0.0;
    for (uint32_t l = 0; l < c.num_layers; ++l) {
      for (uint32_t h = 0; h < c.num_kv_heads; ++h) {
        for (size_t slot = 0; slot < mine.num_slots(l, h); ++slot) {
          const float* st = mine.slot_stats(l, h, slot);
          for (uint32_t s = 0; s < kNumSlotStats; ++s) {
            for (uint32_t g = 0; g < mine.stats_group(); ++g) {
              const float x = st[s * mine.stats_group() + g];
              if (own.wants(static_cast<SlotStat>(s))) {
                requested_mass += x;
              } else {
                ASSERT_EQ(x, 0.0f) << "unrequested stat " << s << " layer " << l << " slot " << slot;
              }
            }
          }
        }
      }
    }
    EXPECT_GT(requested_mass, 0.0);
    expect_same_plan(policy->select(PruneView{runner.kv(0), n, c.num_heads}),
                     policy->select(PruneView{runner.kv(1), n, c.num_heads}));
  }
}

}  // namespace
}  // namespace prunekv
