// The engine on the real stories260K model against the 60 golden greedy outputs (llama2.c,
// full cache): batched on an ample pool, and on a pool so small that requests are preempted
// again and again (recompute must reproduce every token).
#include <algorithm>

#include <gtest/gtest.h>

#include "model/model.h"
#include "scheduler/engine.h"
#include "scheduler/transformer_runner.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_paths.h"

namespace prunekv {
namespace {

class EngineGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    PKV_REQUIRE_SHARED_FILE(testing::model_path("stories260K.bin"));
    PKV_REQUIRE_SHARED_FILE(testing::golden_path());
    model_ = testing::load_golden_model();
    cases_ = testing::load_golden();
    ASSERT_EQ(cases_.size(), 60u);
  }

  std::vector<RequestSpec> specs() const { return testing::golden_specs(cases_); }

  void expect_golden(const std::vector<RequestOutput>& outputs) const {
    ASSERT_EQ(outputs.size(), cases_.size());
    size_t exact = 0;
    for (size_t i = 0; i < cases_.size(); ++i) {
      EXPECT_EQ(outputs[i].id, cases_[i].id);
      EXPECT_EQ(outputs[i].output_tokens, cases_[i].output_tokens) << cases_[i].id;
      EXPECT_EQ(to_string(outputs[i].finish_reason), cases_[i].finish_reason) << cases_[i].id;
      exact += outputs[i].output_tokens == cases_[i].output_tokens;
    }
    EXPECT_EQ(exact, cases_.size());
  }

  std::unique_ptr<Model> model_;
  std::vector<testing::GoldenCase> cases_;
};

TEST_F(EngineGolden, AllSixtyBatchedOnAnAmplePoolEqualTheGoldenTokens) {
  TransformerRunner runner(*model_, 2);
  EngineConfig config;
  config.num_kv_blocks = 60 * 20 * 40;
  config.commit_kv_memory = true;  // as the benchmarks run it: the pool mapped (zeroed) up front
  EngineStats stats;
  const auto outputs = generate(runner, config, specs(), &stats);
  expect_golden(outputs);
  EXPECT_EQ(stats.num_preemptions, 0u);
  EXPECT_EQ(stats.num_recomputed_tokens, 0u);
  EXPECT_EQ(stats.num_admissions_refused_for_blocks, 0u);
  EXPECT_GT(stats.peak_running, 30u);
}

TEST_F(EngineGolden, RepeatedPreemptionsOnATinyPoolStillGiveTheGoldenTokens) {
  TransformerRunner runner(*model_, 2);
  const KvLayout layout = runner.kv_layout(kDefaultBlockSize);
  size_t largest = 0;  // the biggest request's whole footprint, so every request can run
  for (const auto& c : cases_)
    largest = std::max(largest, layout.num_lists() * layout.blocks_for_slots(c.prompt_tokens.size() + size_t(c.max_tokens)));
  EngineConfig config;
  config.num_kv_blocks = largest + largest / 4;
  config.max_num_batched_tokens = 256;  // long prompts are chunked too
  EngineStats stats;
  const auto outputs = generate(runner, config, specs(), &stats);
  expect_golden(outputs);
  EXPECT_GT(stats.num_preemptions, 10u);
  // Every position a request fed back is computed once, plus the recomputed ones: the prompt
  // and every output token, but the last one when no stop token followed it.
  size_t once = 0;
  for (const auto& out : outputs)
    once += out.num_prompt_tokens + out.output_tokens.size() - (out.finish_reason == FinishReason::kLength ? 1 : 0);
  EXPECT_GT(stats.num_recomputed_tokens, 0u);
  EXPECT_EQ(stats.num_prefill_tokens + stats.num_decode_tokens, once + stats.num_recomputed_tokens);
  EXPECT_GT(stats.num_admissions_refused_for_blocks, 0u);
}

// The threshold-free policies under memory pressure: every request is preempted and recomputed
// again and again, each recompute prunes its prompt anew (compaction for topp, whole-block drops
// for topp-blk), and the tokens must equal those of an ample pool under the same policy; the
// pool's leak check runs when each engine is destroyed.
TEST_F(EngineGolden, ThresholdFreePoliciesGiveTheSameTokensUnderRepeatedPreemption) {
  TransformerRunner runner(*model_, 2);
  const KvLayout layout = runner.kv_layout(kDefaultBlockSize);
  size_t largest = 0;
  for (const auto& c : cases_)
    largest = std::max(largest, layout.num_lists() * layout.blocks_for_slots(c.prompt_tokens.size() + size_t(c.max_tokens)));
  for (const char* policy : {"topp", "topp-blk"}) {
    SCOPED_TRACE(policy);
    EngineConfig ample;
    ample.num_kv_blocks = 60 * 20 * 40;
    ample.default_policy = policy;
    EngineConfig tight = ample;
    tight.num_kv_blocks = largest + largest / 4;
    tight.max_num_batched_tokens = 256;  // long prompts are chunked too
    EngineStats stats;
    const auto expected = generate(runner, ample, specs());
    const auto outputs = generate(runner, tight, specs(), &stats);
    ASSERT_EQ(outputs.size(), expected.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      ASSERT_TRUE(outputs[i].finished()) << outputs[i].error;
      EXPECT_EQ(outputs[i].output_tokens, expected[i].output_tokens) << cases_[i].id;
      EXPECT_EQ(outputs[i].kv_kept_fraction, expected[i].kv_kept_fraction) << cases_[i].id;
    }
    EXPECT_GT(stats.num_preemptions, 10u);
    EXPECT_GT(stats.blocks_freed_by_pruning, 0u);
  }
}

// Cancelling everything mid-flight (a destroyed engine) after some requests were pruned returns
// every block, the dropped ones and the kept ones (the pool aborts on a leak).
TEST_F(EngineGolden, DestroyingAnEngineMidFlightAfterTopPBlockPruningFreesEveryBlock) {
  TransformerRunner runner(*model_, 2);
  EngineConfig config;
  config.num_kv_blocks = 60 * 20 * 40;
  config.default_policy = "topp-blk";
  EngineStats stats;
  {
    Engine engine(runner, config);
    for (const RequestSpec& spec : specs()) engine.submit(spec);
    for (int i = 0; i < 4; ++i) engine.step();
    stats = engine.stats();
  }
  EXPECT_GT(stats.blocks_freed_by_pruning, 0u);
}

// fp16 KV rounds every K/V element (relative error up to 2^-11), so near-tie logits may flip:
// it must keep most golden outputs exact. Measured: 56 of 60 (fp32: 60 of 60).
TEST_F(EngineGolden, HalfPrecisionKvKeepsMostGoldenOutputsExact) {
  TransformerRunner runner(*model_, 2);
  EngineConfig config;
  config.num_kv_blocks = 60 * 20 * 40;
  config.kv_dtype = KvDtype::kF16;
  const auto outputs = generate(runner, config, specs());
  ASSERT_EQ(outputs.size(), cases_.size());
  size_t exact = 0;
  for (size_t i = 0; i < cases_.size(); ++i) exact += outputs[i].output_tokens == cases_[i].output_tokens;
  EXPECT_GE(exact, 50u);
}

}  // namespace
}  // namespace prunekv
