// dbudget on the real model: prefill each golden prompt of stories260K with statistics
// recorded, prune, and compare the mean kept fractions with the figures of docs/method.md
// (measured by an independent implementation of the rule).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "model/model.h"
#include "policies/pruning_policy.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/paged_runner.h"

namespace prunekv {
namespace {

constexpr uint32_t kBlockSize = 16;

struct KeptFractions {
  double tokens = 0.0;          // kept (layer, KV head, prompt position) entries / all
  double blocks = 0.0;          // PruneOutcome's: blocks the kept prompt slots fill / before
  double touched_blocks = 0.0;  // blocks of the original layout that still hold a kept token
};

// Blocks of the unpruned layout (position p in block p / 16) that hold at least one of the
// kept prompt positions, over every list; for a block-rounded cut this equals the blocks kept.
size_t touched_blocks(const SequenceKv& kv, int32_t prompt_len) {
  size_t total = 0;
  for (uint32_t layer = 0; layer < kv.layout().num_layers; ++layer) {
    for (uint32_t kv_head = 0; kv_head < kv.layout().num_kv_heads; ++kv_head) {
      int64_t last_block = -1;
      for (Pos pos : kv.positions(layer, kv_head)) {
        if (pos >= prompt_len) continue;
        const int64_t block = pos / int64_t{kBlockSize};
        total += block != last_block;
        last_block = block;
      }
    }
  }
  return total;
}

KeptFractions mean_kept_fractions(const Model& model, const std::vector<testing::GoldenCase>& cases,
                                  const std::string& spec) {
  const auto policy = make_pruning_policy(spec);
  KeptFractions sum;
  for (const testing::GoldenCase& c : cases) {
    const auto n = static_cast<int32_t>(c.prompt_tokens.size());
    const size_t lists = size_t{model.config.num_layers} * model.config.num_kv_heads;
    testing::PagedRunner runner(model, kBlockSize, lists * (size_t(n) / kBlockSize + 2), /*num_threads=*/1,
                                /*with_stats=*/true);
    const size_t seq = runner.add_sequence();
    runner.step({{seq, c.prompt_tokens, true, policy->stats_request(n)}});
    SequenceKv& kv = runner.kv(seq);
    const size_t blocks_before = kv.num_blocks();
    const PruneOutcome outcome =
        apply_prune_plan(policy->select(PruneView{kv, n, model.config.num_heads}), kv, n);
    sum.tokens += outcome.kept_fraction();
    sum.blocks += outcome.kept_block_fraction();
    sum.touched_blocks += double(touched_blocks(kv, n)) / double(blocks_before);
  }
  const double count = double(cases.size());
  return {sum.tokens / count, sum.blocks / count, sum.touched_blocks / count};
}

TEST(DBudgetPolicy, ReproducesTheKeptFractionsOfTheMethodNoteOnGoldenPrompts) {
  PKV_REQUIRE_SHARED_FILE(testing::model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  const auto model = testing::load_golden_model();
  const std::vector<testing::GoldenCase> cases = testing::load_golden();
  ASSERT_EQ(cases.size(), 60u);

  struct Target {
    const char* spec;
    double tokens;
    double blocks;
  };
  // docs/method.md and issue 5: (kept tokens, kept 16-token blocks).
  for (const Target& target : {Target{"dbudget", 0.662, 0.672}, Target{"dbudget:exact", 0.606, 0.672},
                               Target{"dbudget:T=0.005", 0.696, 0.705}}) {
    const KeptFractions kept = mean_kept_fractions(*model, cases, target.spec);
    std::printf("%-16s kept tokens %.4f (target %.3f)  kept blocks %.4f  touched blocks %.4f (target %.3f)\n",
                target.spec, kept.tokens, target.tokens, kept.blocks, kept.touched_blocks, target.blocks);
    // Issue 5: within numerical noise, +-0.01. The note's block figure counts the blocks of the
    // original layout that keep a token; compaction (the exact cut) packs the kept slots into
    // fewer blocks than that, never more.
    EXPECT_NEAR(kept.tokens, target.tokens, 0.01) << target.spec;
    EXPECT_NEAR(kept.touched_blocks, target.blocks, 0.01) << target.spec;
    EXPECT_LE(kept.blocks, kept.touched_blocks + 1e-12) << target.spec;
  }
}

}  // namespace
}  // namespace prunekv
