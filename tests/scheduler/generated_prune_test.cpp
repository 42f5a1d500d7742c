// Pruning during decode (EngineConfig::prune_every) on a real forward (a small random model, so
// the window statistic is real attention): every N decode steps the blocks it frees are back in
// the pool within the same step; nothing leaks under recompute preemption or cancellation; a
// rule that keeps everything changes no token; pruning several requests in parallel gives what
// pruning them one by one gives.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "model/model.h"
#include "scheduler/engine.h"
#include "scheduler/transformer_runner.h"
#include "tests/scheduler/engine_test_util.h"
#include "tests/testing/random_model.h"

namespace prunekv {
namespace {

using testing::make_spec;

class GeneratedPrune : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::RandomModelShape shape;  // 2 layers x 2 KV heads: 4 lists
    model_ = testing::make_random_model(shape, 29);
  }

  // Blocks of 4 tokens, so a prune has whole blocks to free in a short generation.
  static EngineConfig config(const std::string& policy, uint32_t prune_every, size_t num_blocks = 4096) {
    EngineConfig c;
    c.num_kv_blocks = num_blocks;
    c.block_size = 4;
    c.default_policy = policy;
    c.prune_every = prune_every;
    c.admission_reserve_fraction = 0.0;
    return c;
  }

  std::unique_ptr<Model> model_;
};

// A rule eager to drop (topp-blk with eps = 0.3) so every prune frees something.
constexpr const char* kEager = "topp-blk:eps=0.3";

TEST_F(GeneratedPrune, FreesBlocksEveryNDecodeStepsBackToThePoolInTheSameStep) {
  TransformerRunner runner(*model_, 1);
  Engine engine(runner, config(kEager, 8));
  RequestSpec spec = make_spec("r", 40, 60);
  spec.record_kv_blocks = true;
  auto future = engine.submit_future(spec).second;
  size_t prune_steps = 0;
  while (engine.step()) {
    const StepStats& s = engine.last_step();
    if (s.num_generated_prunes == 0) {
      EXPECT_EQ(s.blocks_freed_by_generated_pruning, 0u);
      continue;
    }
    ++prune_steps;
    EXPECT_EQ(s.num_generated_prunes, 1u);
    // The first prune has no candidate: its window, min(32, 8) = 8 tokens, is every generated
    // token. From the second on, the older generated blocks are there to free.
    if (prune_steps == 1)
      EXPECT_EQ(s.blocks_freed_by_generated_pruning, 0u);
    else
      EXPECT_GT(s.blocks_freed_by_generated_pruning, 0u) << "step " << s.step;
    // Allocation happened before the forward; the prune's blocks are free again at the step's end.
    EXPECT_EQ(s.blocks_used, s.peak_blocks_used - s.blocks_freed_by_generated_pruning) << "step " << s.step;
  }
  const RequestOutput out = future.get();
  ASSERT_TRUE(out.finished()) << out.error;
  ASSERT_EQ(out.output_tokens.size(), 60u);
  // Generated tokens in the KV reach 8, 16, ..., 56 of the 59 it ever holds: seven prunes.
  EXPECT_EQ(prune_steps, 7u);
  EXPECT_EQ(out.num_generated_prunes, 7u);
  EXPECT_EQ(engine.stats().num_generated_prunes, 7u);
  EXPECT_EQ(out.blocks_freed_by_generated_pruning, engine.stats().blocks_freed_by_generated_pruning);
  EXPECT_EQ(engine.pool().num_used_blocks(), 0u);

  // Without --prune-every the same request ends holding more blocks.
  TransformerRunner plain_runner(*model_, 1);
  spec.id = "plain";
  const auto plain = generate(plain_runner, config(kEager, 0), {spec});
  ASSERT_EQ(out.kv_blocks_held.size(), 60u);
  ASSERT_EQ(plain[0].kv_blocks_held.size(), 60u);
  EXPECT_EQ(plain[0].num_generated_prunes, 0u);
  EXPECT_LT(out.kv_blocks_held.back(), plain[0].kv_blocks_held.back());
  EXPECT_EQ(out.kv_blocks_held.front(), plain[0].kv_blocks_held.front());  // the prompt prune alike
}

TEST_F(GeneratedPrune, ARuleThatKeepsEverythingChangesNoToken) {
  // eps = 0: every slot carrying any attention stays, i.e. all of them; the prunes run (and the
  // decode queries record statistics) but must change neither a token nor a block.
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 4; ++i) specs.push_back(make_spec("k" + std::to_string(i), 30 + 7 * i, 50));
  TransformerRunner full_runner(*model_, 1);
  const auto full = generate(full_runner, config("full", 0), specs);
  for (const char* policy : {"topp:eps=0", "topp-blk:eps=0", "dbudget-l1:eps=0"}) {
    SCOPED_TRACE(policy);
    TransformerRunner runner(*model_, 1);
    EngineStats stats;
    const auto outputs = generate(runner, config(policy, 4), specs, &stats);
    EXPECT_GT(stats.num_generated_prunes, 4u * 10u);
    EXPECT_EQ(stats.blocks_freed_by_generated_pruning, 0u);
    for (size_t i = 0; i < specs.size(); ++i) {
      ASSERT_TRUE(outputs[i].finished()) << outputs[i].error;
      EXPECT_EQ(outputs[i].output_tokens, full[i].output_tokens) << specs[i].id;
    }
  }
}

TEST_F(GeneratedPrune, RecomputePreemptionLeaksNoBlock) {
  // Eight requests of 40 + 80 tokens need 4 lists x 30 blocks each; a pool of 200 holds one
  // comfortably and two barely, so requests are preempted and recomputed again and again.
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 8; ++i) specs.push_back(make_spec("p" + std::to_string(i), 40, 80));
  for (const char* policy : {kEager, "topp:eps=0.3", "dbudget-l1:eps=0.3"}) {
    SCOPED_TRACE(policy);
    TransformerRunner runner(*model_, 1);
    Engine engine(runner, config(policy, 8, 200));
    for (const RequestSpec& spec : specs) engine.submit(spec);
    engine.run_until_idle();
    const EngineStats& stats = engine.stats();
    EXPECT_GT(stats.num_preemptions, 0u);
    EXPECT_GT(stats.num_generated_prunes, 0u);
    EXPECT_GT(stats.blocks_freed_by_generated_pruning, 0u);
    EXPECT_EQ(stats.num_requests_finished, specs.size());
    EXPECT_EQ(engine.pool().num_used_blocks(), 0u);
  }
}

TEST_F(GeneratedPrune, CancellingMidGenerationLeaksNoBlock) {
  TransformerRunner runner(*model_, 1);
  Engine engine(runner, config(kEager, 4));
  testing::EndRecorder recorder;
  std::vector<RequestId> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(engine.submit(make_spec("c" + std::to_string(i), 40, 100), recorder.callback()));
  while (engine.stats().num_generated_prunes < 6 && engine.step()) {
  }
  ASSERT_GE(engine.stats().num_generated_prunes, 6u);
  ASSERT_GT(engine.pool().num_used_blocks(), 0u);
  for (RequestId id : ids) engine.cancel(id);
  engine.run_until_idle();
  EXPECT_EQ(engine.stats().num_requests_cancelled, ids.size());
  EXPECT_EQ(engine.pool().num_used_blocks(), 0u);
  for (RequestId id : ids) EXPECT_EQ(recorder.end_count[id], 1);
}

TEST_F(GeneratedPrune, PruningInParallelGivesWhatPruningOneByOneGives) {
  // Same prompt length: every request's prunes fall in the same steps, so the pruner runs them
  // in parallel on the engine's task arena.
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 6; ++i) {
    specs.push_back(make_spec("s" + std::to_string(i), 36, 70));
    specs.back().record_kv_blocks = true;
  }
  for (const char* policy : {kEager, "topp:eps=0.1", "dbudget-l1:eps=0.1"}) {
    SCOPED_TRACE(policy);
    TransformerRunner serial_runner(*model_, 1), parallel_runner(*model_, 1);
    EngineConfig serial = config(policy, 8);
    EngineConfig parallel = serial;
    parallel.num_threads = 2;
    EngineStats parallel_stats;
    const auto a = generate(serial_runner, serial, specs);
    const auto b = generate(parallel_runner, parallel, specs, &parallel_stats);
    EXPECT_GT(parallel_stats.blocks_freed_by_generated_pruning, 0u);
    for (size_t i = 0; i < specs.size(); ++i) {
      EXPECT_EQ(a[i].output_tokens, b[i].output_tokens) << specs[i].id;
      EXPECT_EQ(a[i].blocks_freed_by_generated_pruning, b[i].blocks_freed_by_generated_pruning) << specs[i].id;
      EXPECT_EQ(a[i].kv_blocks_held, b[i].kv_blocks_held) << specs[i].id;
    }
  }
}

}  // namespace
}  // namespace prunekv
