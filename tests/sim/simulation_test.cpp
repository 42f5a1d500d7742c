#include "sim/simulation.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "common/error.h"
#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "sim/cost_model.h"
#include "model/step_batch.h"
#include "sim/simulated_policy.h"
#include "sim/simulated_runner.h"

namespace prunekv::sim {
namespace {

// L=4, D=32, H=4, H_kv=2, d=8: 8 lists per sequence, small enough to count by hand.
ModelConfig tiny_model() {
  ModelConfig config;
  config.name = "tiny";
  config.num_layers = 4;
  config.dim = 32;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.hidden_dim = 64;
  config.vocab_size = 100;
  config.context_length = 4096;
  return config;
}

DeviceProfile slow_device() { return {"slow", 1e9, 1e8, 1ull << 40, 1e-3, 4}; }

std::vector<Pos> positions(Pos first, size_t n) {
  std::vector<Pos> out(n);
  std::iota(out.begin(), out.end(), first);
  return out;
}

TEST(SimulatedRunner, ExecuteAdvancesTheClockByTheStepCost) {
  SimulatedRunner runner(tiny_model(), slow_device(), KvDtype::kF16);
  const KvLayout layout = runner.kv_layout(16);
  // One list per layer holding both KV heads: the same bytes per token as 8 per-head lists.
  EXPECT_EQ(layout.num_lists(), 4u);
  EXPECT_EQ(layout.bytes_per_token(), tiny_model().kv_layout(16, KvDtype::kF16).bytes_per_token());
  EXPECT_EQ(layout.bytes_per_block(), 2 * tiny_model().kv_layout(16, KvDtype::kF16).bytes_per_block());
  EXPECT_EQ(layout.dtype, KvDtype::kF16);
  BlockPool pool(layout, 1000, BlockPool::Storage::kCountOnly);
  SequenceKv a(pool), b(pool);
  ASSERT_TRUE(a.append(positions(0, 20)));  // a 20-token prefill
  ASSERT_TRUE(b.append(positions(0, 33)));  // 32 tokens earlier + this step's decode token
  StepBatch batch;
  const std::vector<TokenId> prompt(20, 3), decode(1, 3);
  batch.add(&a, prompt, 0, true);
  batch.add(&b, decode, 32, true);
  std::vector<Sampler*> samplers(2, nullptr);
  std::vector<TokenId> next;
  runner.execute(batch, samplers, next);

  CostModel model(tiny_model(), slow_device(), KvDtype::kF16);
  const std::vector<SequenceWork> work = {{20, 20 * 8, true}, {1, 33 * 8, true}};
  const double expected = model.step_cost(work).seconds;
  EXPECT_DOUBLE_EQ(runner.now(), expected);
  EXPECT_DOUBLE_EQ(runner.busy_seconds(), expected);
  EXPECT_EQ(next, (std::vector<TokenId>{runner.simulated_token(), runner.simulated_token()}));
  EXPECT_TRUE(runner.stop_tokens().empty());
  a.free_all();
  b.free_all();
}

TEST(SimulatedRunner, WaitUntilOnlyMovesForward) {
  SimulatedRunner runner(tiny_model(), slow_device(), KvDtype::kF16);
  runner.wait_until(2.5);
  EXPECT_EQ(runner.now(), 2.5);
  runner.wait_until(1.0);
  EXPECT_EQ(runner.now(), 2.5);
  EXPECT_EQ(runner.busy_seconds(), 0.0);
}

TEST(SimulatedPolicy, KeepsTheDrawnFractionToWithinABlockAndProtectsTheBottomLayers) {
  const KvLayout layout{8, 2, 8, 16, KvDtype::kF16};
  BlockPool pool(layout, 10000, BlockPool::Storage::kCountOnly);
  for (double keep : {0.4, 0.6368, 0.9}) {
    SequenceKv kv(pool);
    ASSERT_TRUE(kv.append(positions(0, 1000)));
    const auto policy = make_simulated_policy(fmt::format("sim:dbudget:{}", keep));
    EXPECT_EQ(policy->name(), "dbudget");
    const PrunePlan plan = policy->select({kv, 1000, 4});
    EXPECT_TRUE(plan.block_rounded);
    ASSERT_EQ(plan.cuts.size(), 6u);  // layers 2..7
    EXPECT_EQ(plan.cuts.front().layer, 2u);
    EXPECT_EQ(plan.cuts.front().first_pos, 4);
    const PruneOutcome outcome = apply_prune_plan(plan, kv, 1000);
    // Rounding to whole blocks moves each pruned layer by at most 8 tokens: 6/8 * 8/1000.
    EXPECT_NEAR(outcome.kept_fraction(), keep, 0.006) << keep;
    EXPECT_EQ(kv.num_slots(0, 1), 1000u);
    EXPECT_EQ(kv.num_slots(1, 0), 1000u);
    EXPECT_GT(outcome.blocks_freed, 0u);
  }
}

TEST(SimulatedPolicy, FixedRatioPoliciesCutEveryLayerAndShortPromptsAreLeftAlone) {
  const KvLayout layout{4, 1, 8, 16, KvDtype::kF16};
  BlockPool pool(layout, 1000, BlockPool::Storage::kCountOnly);
  SequenceKv kv(pool);
  ASSERT_TRUE(kv.append(positions(0, 320)));
  const auto snapkv = make_simulated_policy(simulated_policy_spec("snapkv:0.5", 0.9));
  EXPECT_EQ(snapkv->name(), "snapkv:0.5");
  const PrunePlan plan = snapkv->select({kv, 320, 4});
  EXPECT_EQ(plan.cuts.size(), 4u);
  EXPECT_NEAR(apply_prune_plan(plan, kv, 320).kept_fraction(), 0.5, 0.03);

  SequenceKv short_kv(pool);
  ASSERT_TRUE(short_kv.append(positions(0, 20)));  // the cut would not free a whole block
  EXPECT_TRUE(make_simulated_policy("sim:dbudget:0.1")->select({short_kv, 20, 4}).cuts.empty());
}

TEST(SimulatedPolicy, SpecsAndErrors) {
  EXPECT_EQ(simulated_policy_spec("full", 0.3), "full");
  EXPECT_EQ(simulated_policy_spec("dbudget", 0.63681), "sim:dbudget:0.6368");
  EXPECT_FALSE(make_simulated_policy("full")->prunes());
  EXPECT_THROW(simulated_policy_spec("snapkv", 0.5), ConfigError);  // no ratio
  EXPECT_THROW(simulated_policy_spec("snapkv:1.5", 0.5), ConfigError);
  EXPECT_THROW(make_simulated_policy("sim:dbudget:zero"), ConfigError);
  EXPECT_THROW(make_simulated_policy("sim:dbudget:0"), ConfigError);
}

SimulationConfig tiny_simulation(uint64_t kv_bytes) {
  SimulationConfig config;
  config.model = tiny_model();
  config.device = slow_device();
  config.kv_dtype = KvDtype::kF16;
  config.kv_memory_bytes = kv_bytes;
  config.block_size = 16;
  config.max_num_seqs = 64;
  config.max_num_batched_tokens = 4096;
  config.kept_fraction = "fixed:0.6";  // layers 0-1 of 4 stay whole: 0.5 at least
  config.seed = 3;
  return config;
}

TEST(Simulation, OneRequestTakesExactlyTheHandSummedStepTimes) {
  const SimulationConfig config = tiny_simulation(1 << 20);
  const std::vector<SimulatedRequest> trace = {{0.0, 100, 5}};
  const SimulationResult r = run_simulation(config, trace, "full");
  // Step 1: the whole prompt (100 tokens, 100 slots per list) and the first token; then four
  // decode steps, each holding one more slot per list.
  CostModel model(config.model, config.device, config.kv_dtype);
  const std::vector<SequenceWork> prefill = {{100, 100 * 8, true}};
  double expected = model.step_cost(prefill).seconds;
  const double ttft = expected;
  for (size_t held = 101; held <= 104; ++held) {
    const std::vector<SequenceWork> decode = {{1, held * 8, true}};
    expected += model.step_cost(decode).seconds;
  }
  EXPECT_EQ(r.num_finished, 1u);
  EXPECT_EQ(r.num_steps, 5u);
  EXPECT_NEAR(r.elapsed_time, expected, 1e-12);
  EXPECT_NEAR(r.ttft.p50, ttft, 1e-12);
  EXPECT_EQ(r.num_output_tokens, 5u);
  EXPECT_EQ(r.num_prompt_tokens, 100u);
  EXPECT_EQ(r.blocks_used_after, 0u);
}

// 40 requests of 600 prompt + 50 output tokens; the pool holds about 4 of them unpruned.
std::vector<SimulatedRequest> pressure_trace() {
  std::vector<SimulatedRequest> trace;
  for (int i = 0; i < 40; ++i) trace.push_back({0.01 * i, 600, 50});
  return trace;
}

TEST(Simulation, SmallTraceRunsToTheEndAndReturnsEveryBlock) {
  // 4 lists (one per layer, both KV heads) x 42 blocks (650 tokens) = 168 blocks per request;
  // 700 blocks of 16 tokens x 16 x 2 x 2 bytes.
  const SimulationConfig config = tiny_simulation(1400 * 512);
  const auto trace = pressure_trace();
  for (const char* policy : {"full", "dbudget", "streaming:0.5"}) {
    const SimulationResult r = run_simulation(config, trace, policy);
    EXPECT_EQ(r.kv_blocks_total, 700u) << policy;
    EXPECT_EQ(r.kv_block_bytes, 1024u) << policy;
    EXPECT_EQ(r.num_finished, 40u) << policy;
    EXPECT_EQ(r.num_failed, 0u) << policy;
    EXPECT_EQ(r.num_output_tokens, 40u * 50) << policy;
    EXPECT_EQ(r.blocks_used_after, 0u) << policy;
    EXPECT_LE(r.peak_kv_blocks_used, 700u) << policy;
    EXPECT_GT(r.elapsed_time, 0.0) << policy;
    EXPECT_EQ(r.timeline.size(), r.num_steps) << policy;
    // All 40 are queued from the start, but only request 0 has arrived by the first step.
    ASSERT_EQ(r.timeline_waiting_arrived.size(), r.timeline.size()) << policy;
    EXPECT_GT(r.timeline.front().num_waiting, 30u) << policy;
    EXPECT_EQ(r.timeline_waiting_arrived.front(), 0u) << policy;
  }
}

TEST(Simulation, DbudgetRunsMoreRequestsAtOnceThanFullUnderATightPool) {
  const SimulationConfig config = tiny_simulation(1400 * 512);
  const auto trace = pressure_trace();
  const SimulationResult full = run_simulation(config, trace, "full");
  const SimulationResult dbudget = run_simulation(config, trace, "dbudget");
  EXPECT_EQ(full.blocks_freed_by_pruning, 0u);
  EXPECT_GT(dbudget.blocks_freed_by_pruning, 0u);
  EXPECT_NEAR(dbudget.mean_kv_kept_fraction, 0.6, 0.02);
  EXPECT_LE(full.max_concurrency, 4u);
  EXPECT_GT(dbudget.max_concurrency, full.max_concurrency);
  EXPECT_GT(dbudget.mean_concurrency, full.mean_concurrency);
  EXPECT_LT(dbudget.elapsed_time, full.elapsed_time);
}

TEST(Simulation, IsDeterministic) {
  const SimulationConfig config = tiny_simulation(1400 * 512);
  const auto trace = pressure_trace();
  const auto a = run_simulation(config, trace, "dbudget");
  const auto b = run_simulation(config, trace, "dbudget");
  EXPECT_EQ(a.elapsed_time, b.elapsed_time);
  EXPECT_EQ(a.blocks_freed_by_pruning, b.blocks_freed_by_pruning);
  EXPECT_EQ(a.num_preemptions, b.num_preemptions);
}

TEST(Simulation, RequestsThatCanNeverFitFailAloneWithAReason) {
  const SimulationConfig config = tiny_simulation(1400 * 512);
  std::vector<SimulatedRequest> trace = pressure_trace();
  trace.resize(3);
  trace.push_back({0.0, 3000, 10});  // 3,010 tokens: 4 lists x 189 blocks > 700 blocks
  const auto r = run_simulation(config, trace, "full");
  EXPECT_EQ(r.num_finished, 3u);
  EXPECT_EQ(r.num_failed, 1u);
  EXPECT_NE(r.first_error.find("blocks"), std::string::npos) << r.first_error;
}

TEST(Simulation, BadConfigsAreConfigErrors) {
  const auto trace = pressure_trace();
  EXPECT_THROW(run_simulation(tiny_simulation(0), trace, "full"), ConfigError);
  EXPECT_THROW(run_simulation(tiny_simulation(1 << 20), trace, "nonsense:0.5:x"), ConfigError);
  SimulationConfig bad_kept = tiny_simulation(1 << 20);
  bad_kept.kept_fraction = "fixed:2";
  EXPECT_THROW(run_simulation(bad_kept, trace, "dbudget"), ConfigError);
}

TEST(LatencySummary, InterpolatesPercentiles) {
  const LatencySummary s = summarize_latencies({4, 1, 3, 2, 5});
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.p50, 3.0);
  EXPECT_DOUBLE_EQ(s.p90, 4.6);
  EXPECT_DOUBLE_EQ(s.p99, 4.96);
  EXPECT_DOUBLE_EQ(summarize_latencies({}).p99, 0.0);
}

}  // namespace
}  // namespace prunekv::sim
