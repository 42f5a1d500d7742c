// Pruning-aware admission on scripted kept fractions: the forecast right, too optimistic and too
// pessimistic, against naive admission. One list, blocks of 4 tokens, a pool of 7 blocks, a
// token budget of 12 per step, no reserve.
//
// W0 (8 tokens, 1 output) runs first alone, so the forecast has one observation. Then R1 and R2
// (16 prompt tokens = 4 blocks, 4 outputs each): step 1 computes R1's first 12 tokens (3 blocks,
// 4 free); step 2 its last 4 (1 block, 3 free), leaving 8 tokens of budget for R2, whose whole
// prefill needs 4 blocks. Naive admission waits for R1's prune; pruning-aware admission counts
// the 2 blocks R1 is forecast to release (kept 0.5) and starts R2 in step 2.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "scheduler/engine.h"
#include "scheduler/prune_forecast.h"
#include "tests/scheduler/engine_test_util.h"
#include "tests/testing/fake_runner.h"
#include "tests/testing/scripted_policy.h"

namespace prunekv {
namespace {

using testing::EndRecorder;
using testing::FakeRunner;
using testing::make_spec;
using Ids = std::vector<RequestId>;

struct Scenario {
  std::vector<double> kept;  // W0, R1, R2 (the last repeats)
  AdmissionMode admission = AdmissionMode::kPruningAware;
};

struct Result {
  uint64_t r2_admitted_step = 0;
  size_t preemptions = 0;
  std::vector<size_t> blocks_used;  // per step from step 1
  std::map<RequestId, RequestOutput> ended;
  std::map<RequestId, int> end_count;
  size_t free_at_end = 0;
  double final_prediction = 0.0;
};

Result run(const Scenario& scenario) {
  testing::ScriptedPolicy policy(scenario.kept);
  EngineConfig config = testing::tiny_config(7, 12);
  config.default_policy = "scripted";
  config.policy_factory = testing::scripted_factory(policy);
  config.admission = scenario.admission;
  config.forecast_min_observations = 1;
  FakeRunner runner;
  Engine engine(runner, config);
  EndRecorder rec;
  engine.submit(make_spec("w0", 8, 1), rec.callback());
  engine.run_until_idle();
  EXPECT_EQ(engine.stats().num_pruned, 1u);
  engine.submit(make_spec("r1", 16, 4), rec.callback());
  const RequestId r2 = engine.submit(make_spec("r2", 16, 4), rec.callback());
  Result result;
  for (int guard = 0; guard < 100 && engine.step(); ++guard) {
    const StepTrace& trace = engine.last_step_trace();
    if (std::find(trace.admitted.begin(), trace.admitted.end(), r2) != trace.admitted.end() &&
        result.r2_admitted_step == 0)
      result.r2_admitted_step = engine.last_step().step;
    result.blocks_used.push_back(engine.last_step().blocks_used);
  }
  EXPECT_FALSE(engine.has_unfinished()) << "no progress: a deadlock";
  result.preemptions = engine.stats().num_preemptions;
  result.ended = rec.ended;
  result.end_count = rec.end_count;
  result.free_at_end = engine.pool().num_free_blocks();
  return result;
}

void expect_all_served(const Result& r) {
  ASSERT_EQ(r.ended.size(), 3u);  // no lost request
  for (const auto& [id, out] : r.ended) {
    EXPECT_EQ(r.end_count.at(id), 1);
    EXPECT_EQ(out.finish_reason, FinishReason::kLength) << out.id;
  }
  EXPECT_EQ(r.free_at_end, 7u);
}

TEST(PruningAwareAdmission, RightForecastAdmitsEarlierWithoutPreemption) {
  const Result aware = run({{0.5}, AdmissionMode::kPruningAware});
  const Result naive = run({{0.5}, AdmissionMode::kNaive});
  expect_all_served(aware);
  expect_all_served(naive);
  EXPECT_EQ(aware.r2_admitted_step, 2u);  // with R1's last chunk
  EXPECT_EQ(naive.r2_admitted_step, 3u);  // after R1's prune
  EXPECT_EQ(aware.preemptions, 0u);
  EXPECT_EQ(naive.preemptions, 0u);
  // Aware, per step: R1 3 blocks; R1 pruned to 2 + R2 2; R1 3 (decode) + R2 pruned to 2.
  ASSERT_GE(aware.blocks_used.size(), 3u);
  EXPECT_EQ(aware.blocks_used[0], 3u);
  EXPECT_EQ(aware.blocks_used[1], 4u);
  EXPECT_EQ(aware.blocks_used[2], 5u);
  // Naive finishes a step later.
  EXPECT_EQ(naive.blocks_used.size(), aware.blocks_used.size() + 1);
}

TEST(PruningAwareAdmission, OptimisticForecastCostsOnePreemptionAndNothingElse) {
  // W0 kept 0.5, but R1 and R2 keep everything: R2 is admitted on credit that never comes, and
  // its second chunk cannot allocate: R2 (latest admitted) is preempted and served after R1.
  const Result r = run({{0.5, 1.0}, AdmissionMode::kPruningAware});
  expect_all_served(r);
  EXPECT_EQ(r.r2_admitted_step, 2u);
  EXPECT_EQ(r.preemptions, 1u);
  for (const auto& [id, out] : r.ended) EXPECT_EQ(out.num_preemptions, out.id == "r2" ? 1u : 0u);
}

TEST(PruningAwareAdmission, PessimisticForecastBehavesLikeNaive) {
  // W0 kept everything, so no credit; R1 then keeps only a quarter. Nothing is lost, nothing
  // preempted, R2 admitted when the blocks are really free.
  const Result r = run({{1.0, 0.25}, AdmissionMode::kPruningAware});
  expect_all_served(r);
  EXPECT_EQ(r.r2_admitted_step, 3u);
  EXPECT_EQ(r.preemptions, 0u);
}

TEST(PruneForecast, GivesNoCreditUntilEnoughObservations) {
  detail::PruneForecast forecast(0.9, 3);
  EXPECT_DOUBLE_EQ(forecast.predicted_kept_fraction("dbudget"), 1.0);
  forecast.observe("dbudget", 0.5);
  forecast.observe("dbudget", 0.6);
  EXPECT_DOUBLE_EQ(forecast.predicted_kept_fraction("dbudget"), 1.0);
  forecast.observe("dbudget", 0.4);
  EXPECT_DOUBLE_EQ(forecast.predicted_kept_fraction("dbudget"), 0.6);  // the 90th percentile of 3
  EXPECT_DOUBLE_EQ(forecast.predicted_kept_fraction("snapkv:0.5"), 1.0);  // per policy
}

TEST(PruneForecast, CorrectsItselfFromRecentObservations) {
  detail::PruneForecast forecast(0.5, 1);
  for (int i = 0; i < 10; ++i) forecast.observe("p", 0.2);
  EXPECT_DOUBLE_EQ(forecast.predicted_kept_fraction("p"), 0.2);
  // A regime change: after a full window of higher fractions only those count.
  for (size_t i = 0; i < detail::PruneForecast::kWindow; ++i) forecast.observe("p", 0.8);
  EXPECT_DOUBLE_EQ(forecast.predicted_kept_fraction("p"), 0.8);
  EXPECT_EQ(forecast.num_observations("p"), 10 + detail::PruneForecast::kWindow);
}

TEST(PruningAwareAdmission, ParallelPruningOfManyRequestsInOneStepKeepsEveryBlockAccounted) {
  testing::ScriptedPolicy policy({0.25});
  EngineConfig config = testing::tiny_config(200, 256);
  config.default_policy = "scripted";
  config.policy_factory = testing::scripted_factory(policy);
  config.num_threads = 2;
  FakeRunner runner;
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 8; ++i) specs.push_back(make_spec(fmt::format("p{}", i), 16, 3));
  EngineStats stats;
  const auto out = generate(runner, config, specs, &stats);
  EXPECT_EQ(stats.num_pruned, 8u);
  EXPECT_EQ(stats.blocks_freed_by_pruning, 8u * 3u);  // 4 prompt blocks, 1 kept
  for (const auto& o : out) {
    EXPECT_DOUBLE_EQ(o.kv_kept_block_fraction, 0.25);
    EXPECT_DOUBLE_EQ(o.kv_kept_fraction, 0.25);
    EXPECT_EQ(o.blocks_freed_by_pruning, 3u);
  }
}

}  // namespace
}  // namespace prunekv
