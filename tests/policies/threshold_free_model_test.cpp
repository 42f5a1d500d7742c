// The threshold-free policies on the real stories260K model: each golden prompt runs greedily
// through the engine under topp, topp-blk and dbudget-l1, and the exact outputs (against the
// full cache's golden tokens) and the share of prompt blocks freed (pooled: all blocks freed over
// all prompt blocks) must match the figures an independent prototype published for them
// (issue 19) within 2 prompts and 2 points.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/model.h"
#include "scheduler/engine.h"
#include "scheduler/transformer_runner.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_paths.h"

namespace prunekv {
namespace {

struct Fidelity {
  size_t exact = 0;
  double freed_percent = 0.0;  // 100 x blocks freed / prompt blocks, pooled over the set
};

Fidelity run_golden(const Model& model, const std::vector<testing::GoldenCase>& cases, const std::string& policy) {
  TransformerRunner runner(model, 2);
  EngineConfig config;
  config.num_kv_blocks = 60 * 20 * 40;
  config.default_policy = policy;
  const std::vector<RequestOutput> outputs = generate(runner, config, testing::golden_specs(cases));
  Fidelity fidelity;
  size_t freed = 0, prompt_blocks = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_TRUE(outputs[i].finished()) << cases[i].id << ": " << outputs[i].error;
    fidelity.exact += outputs[i].output_tokens == cases[i].output_tokens;
    freed += outputs[i].blocks_freed_by_pruning;
    prompt_blocks += outputs[i].num_prompt_blocks;
  }
  fidelity.freed_percent = prompt_blocks ? 100.0 * double(freed) / double(prompt_blocks) : 0.0;
  return fidelity;
}

TEST(ThresholdFreePolicies, MeetThePublishedFidelityAndFreedBlocksOnTheGoldenSet) {
  PKV_REQUIRE_SHARED_FILE(testing::model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  const auto model = testing::load_golden_model();
  const std::vector<testing::GoldenCase> cases = testing::load_golden();
  ASSERT_EQ(cases.size(), 60u);

  struct Published {
    const char* policy;
    size_t exact;
    double freed_percent;
  };
  for (const Published& p : {Published{"topp", 59, 30.4}, Published{"topp-blk", 58, 22.3},
                             Published{"dbudget-l1", 59, 9.3}}) {
    const Fidelity measured = run_golden(*model, cases, p.policy);
    std::printf("%-10s %zu/60 exact, %.1f%% of prompt blocks freed (published %zu/60, %.1f%%)\n", p.policy,
                measured.exact, measured.freed_percent, p.exact, p.freed_percent);
    EXPECT_LE(std::abs(double(measured.exact) - double(p.exact)), 2.0) << p.policy;
    EXPECT_LE(std::abs(measured.freed_percent - p.freed_percent), 2.0) << p.policy;
  }
}

}  // namespace
}  // namespace prunekv
