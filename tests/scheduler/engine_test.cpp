#include "scheduler/engine.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/scheduler/engine_test_util.h"
#include "tests/testing/fake_runner.h"
#include "tests/testing/scripted_policy.h"

namespace prunekv {
namespace {

using testing::EndRecorder;
using testing::FakeRunner;
using testing::make_spec;
using testing::tiny_config;
using Chunks = std::vector<std::pair<RequestId, size_t>>;
using Ids = std::vector<RequestId>;

TEST(Engine, ChunksLongPromptsWithinTheTokenBudget) {
  FakeRunner runner;
  Engine engine(runner, tiny_config(100, 10));
  EndRecorder rec;
  const RequestId a = engine.submit(make_spec("a", 6, 2), rec.callback());
  const RequestId b = engine.submit(make_spec("b", 6, 2), rec.callback());
  const RequestId c = engine.submit(make_spec("c", 3, 2), rec.callback());

  // Step 0: a's whole prompt, then b's first 4 tokens fill the budget of 10; c waits.
  EXPECT_TRUE(engine.step());
  EXPECT_EQ(engine.last_step_trace().chunks, (Chunks{{a, 6}, {b, 4}}));
  EXPECT_EQ(engine.last_step_trace().admitted, (Ids{a, b}));
  EXPECT_EQ(engine.last_step().blocks_used, 3u);  // a: 6 tokens = 2 blocks, b: 4 tokens = 1
  EXPECT_EQ(engine.last_step().num_prefill_tokens, 10u);
  EXPECT_EQ(engine.last_step().num_waiting, 1u);

  // Step 1: a decodes (its 2nd token ends it), b's last 2 prompt tokens, then c's prompt.
  EXPECT_TRUE(engine.step());
  EXPECT_EQ(engine.last_step_trace().chunks, (Chunks{{a, 1}, {b, 2}, {c, 3}}));
  EXPECT_EQ(engine.last_step_trace().admitted, (Ids{c}));
  EXPECT_EQ(engine.last_step_trace().ended, (Ids{a}));
  EXPECT_EQ(engine.last_step().num_decode_tokens, 1u);
  EXPECT_EQ(engine.last_step().num_prefill_tokens, 5u);
  EXPECT_EQ(engine.last_step().blocks_used, 3u);  // a freed; b 2, c 1

  // Step 2: both decode their 2nd token and end.
  EXPECT_FALSE(engine.step());
  EXPECT_EQ(engine.last_step_trace().chunks, (Chunks{{b, 1}, {c, 1}}));
  EXPECT_EQ(engine.last_step_trace().ended, (Ids{b, c}));
  EXPECT_EQ(engine.pool().num_free_blocks(), 100u);
  for (RequestId id : {a, b, c}) {
    EXPECT_EQ(rec.end_count[id], 1);
    EXPECT_EQ(rec.ended[id].finish_reason, FinishReason::kLength);
    EXPECT_EQ(rec.ended[id].output_tokens.size(), 2u);
    EXPECT_EQ(rec.streamed[id], 1u);  // the first token streams, the second ends it
  }
  EXPECT_EQ(engine.stats().num_steps, 3u);
  EXPECT_EQ(engine.stats().num_output_tokens, 6u);
}

TEST(Engine, PreemptsTheLatestAdmittedWhenADecodeIsShortAndRecomputesIt) {
  FakeRunner runner;
  Engine engine(runner, tiny_config(6, 64));
  EndRecorder rec;
  const RequestId a = engine.submit(make_spec("a", 8, 12), rec.callback());
  const RequestId b = engine.submit(make_spec("b", 8, 12), rec.callback());

  engine.step();  // both prompts: 2 + 2 blocks
  EXPECT_EQ(engine.last_step_trace().admitted, (Ids{a, b}));
  EXPECT_EQ(engine.last_step().blocks_used, 4u);
  engine.step();  // position 8 opens a third block for each
  EXPECT_EQ(engine.last_step().blocks_used, 6u);
  for (int i = 0; i < 3; ++i) engine.step();  // positions 9..11 fit
  EXPECT_EQ(engine.last_step().num_preemptions, 0u);

  // Step 5: a's position 12 needs a block, none is free: b (latest admitted) is preempted and
  // nobody is admitted.
  engine.step();
  EXPECT_EQ(engine.last_step_trace().preempted, (Ids{b}));
  EXPECT_EQ(engine.last_step_trace().chunks, (Chunks{{a, 1}}));
  EXPECT_TRUE(engine.last_step_trace().admitted.empty());
  EXPECT_EQ(engine.last_step().blocks_used, 4u);
  EXPECT_EQ(engine.num_waiting(), 1u);

  // b (8 prompt + 5 generated tokens = 4 blocks) waits until a ends at step 11, then is
  // recomputed in one chunk of 13 tokens.
  for (int step = 6; step <= 11; ++step) {
    engine.step();
    EXPECT_TRUE(engine.last_step_trace().admitted.empty()) << "step " << step;
  }
  EXPECT_EQ(engine.last_step_trace().ended, (Ids{a}));
  engine.step();
  EXPECT_EQ(engine.last_step_trace().admitted, (Ids{b}));
  EXPECT_EQ(engine.last_step_trace().chunks, (Chunks{{b, 13}}));
  engine.run_until_idle();

  EXPECT_EQ(rec.ended[b].num_preemptions, 1u);
  EXPECT_EQ(rec.ended[a].num_preemptions, 0u);
  EXPECT_EQ(engine.stats().num_preemptions, 1u);
  EXPECT_EQ(engine.pool().num_free_blocks(), 6u);

  // Recompute reproduces what an ample pool produces.
  FakeRunner ample_runner;
  auto ample = generate(ample_runner, tiny_config(100, 64), {make_spec("a", 8, 12), make_spec("b", 8, 12)});
  EXPECT_EQ(rec.ended[a].output_tokens, ample[0].output_tokens);
  EXPECT_EQ(rec.ended[b].output_tokens, ample[1].output_tokens);
}

TEST(Engine, CancelsQueuedAndRunningRequests) {
  FakeRunner runner;
  Engine engine(runner, tiny_config(4, 64));
  EndRecorder rec;
  const RequestId a = engine.submit(make_spec("a", 8, 4), rec.callback());
  const RequestId b = engine.submit(make_spec("b", 12, 4), rec.callback());  // 3 blocks: waits
  engine.step();
  EXPECT_EQ(engine.num_running(), 1u);
  EXPECT_EQ(engine.num_waiting(), 1u);

  engine.cancel(a);  // running
  engine.cancel(b);  // queued
  const RequestId c = engine.submit(make_spec("c", 4, 4), rec.callback());
  engine.cancel(c);  // not even drained yet
  engine.cancel(9999);  // unknown: no effect
  EXPECT_FALSE(engine.step());
  for (RequestId id : {a, b, c}) {
    EXPECT_EQ(rec.end_count[id], 1);
    EXPECT_EQ(rec.ended[id].finish_reason, FinishReason::kCancelled);
  }
  EXPECT_EQ(rec.ended[a].output_tokens.size(), 1u);
  EXPECT_EQ(engine.pool().num_free_blocks(), 4u);
  EXPECT_EQ(engine.stats().num_requests_cancelled, 3u);

  engine.cancel(a);  // already ended: no effect
  EXPECT_FALSE(engine.step());
  EXPECT_EQ(rec.end_count[a], 1);
}

TEST(Engine, RequestThatCanNeverFitFailsAloneWithAClearError) {
  testing::FakeRunnerOptions options;
  options.context_length = 24;
  FakeRunner runner(options);
  Engine engine(runner, tiny_config(4, 64));
  EndRecorder rec;
  const RequestId too_big = engine.submit(make_spec("big", 16, 5), rec.callback());   // 20 positions: 5 blocks
  const RequestId too_long = engine.submit(make_spec("long", 20, 6), rec.callback());  // 25 > context 24
  const RequestId just_fits = engine.submit(make_spec("just", 12, 5), rec.callback());  // 16 positions: 4 blocks
  const RequestId fine = engine.submit(make_spec("fine", 4, 2), rec.callback());
  RequestSpec empty;
  empty.id = "empty";
  const RequestId no_prompt = engine.submit(empty, rec.callback());
  RequestSpec text = make_spec("text", 4, 2);
  text.prompt_tokens.clear();
  text.prompt = "once upon a time";
  const RequestId no_tokenizer = engine.submit(text, rec.callback());
  const RequestId bad_policy = engine.submit(make_spec("policy", 4, 2, "no-such-policy"), rec.callback());
  engine.run_until_idle();

  EXPECT_EQ(rec.ended[fine].finish_reason, FinishReason::kLength);
  EXPECT_EQ(rec.ended[just_fits].finish_reason, FinishReason::kLength);
  EXPECT_EQ(rec.ended[just_fits].output_tokens.size(), 5u);
  for (RequestId id : {too_big, too_long, no_prompt, no_tokenizer, bad_policy}) {
    EXPECT_EQ(rec.end_count[id], 1);
    EXPECT_EQ(rec.ended[id].finish_reason, FinishReason::kError) << rec.ended[id].id;
    EXPECT_FALSE(rec.ended[id].error.empty());
  }
  EXPECT_NE(rec.ended[too_big].error.find("whole pool holds 4"), std::string::npos) << rec.ended[too_big].error;
  EXPECT_NE(rec.ended[too_long].error.find("more than the model context of 24"), std::string::npos)
      << rec.ended[too_long].error;
  EXPECT_NE(rec.ended[no_prompt].error.find("empty prompt"), std::string::npos);
  EXPECT_NE(rec.ended[no_tokenizer].error.find("no tokenizer"), std::string::npos);
  EXPECT_EQ(engine.stats().num_requests_failed, 5u);
  EXPECT_EQ(engine.pool().num_free_blocks(), 4u);
}

TEST(Engine, RepeatedPreemptionsGiveTheSameTokensAsAnAmplePool) {
  testing::FakeRunnerOptions options;
  options.stop_every = 23;  // some requests stop early
  std::mt19937_64 rng(7);
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 16; ++i) {
    RequestSpec spec = make_spec(fmt::format("r{}", i), 5 + rng() % 26, 5 + uint32_t(rng() % 26));
    spec.ignore_eos = (i % 2 == 0);
    spec.policy = (i % 3 == 0) ? "scripted" : "";
    specs.push_back(spec);
  }
  testing::ScriptedPolicy policy({0.5});
  EngineConfig tight = tiny_config(16, 24);  // 64 token slots for 16 requests of up to 60 tokens
  tight.policy_factory = testing::scripted_factory(policy);
  EngineConfig ample = tiny_config(1000, 24);
  ample.policy_factory = tight.policy_factory;

  FakeRunner tight_runner(options), ample_runner(options);
  EngineStats tight_stats, ample_stats;
  auto tight_out = generate(tight_runner, tight, specs, &tight_stats);
  auto ample_out = generate(ample_runner, ample, specs, &ample_stats);
  ASSERT_EQ(tight_out.size(), specs.size());
  EXPECT_GT(tight_stats.num_preemptions, 5u);
  EXPECT_EQ(ample_stats.num_preemptions, 0u);
  EXPECT_LE(tight_stats.peak_blocks_used, 16u);
  size_t stopped = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(tight_out[i].id, specs[i].id);  // input order
    EXPECT_EQ(tight_out[i].output_tokens, ample_out[i].output_tokens) << specs[i].id;
    EXPECT_EQ(tight_out[i].finish_reason, ample_out[i].finish_reason) << specs[i].id;
    stopped += tight_out[i].finish_reason == FinishReason::kStop;
  }
  EXPECT_GT(stopped, 0u);
  EXPECT_EQ(tight_stats.num_requests_finished, specs.size());
}

TEST(Engine, StopStringCutsTheTextAndEndsTheRequest) {
  testing::FakeRunnerOptions options;
  options.with_tokenizer = true;
  FakeRunner free_runner(options);
  const auto free_out = generate(free_runner, tiny_config(100, 64), {make_spec("s", 6, 20)});
  ASSERT_EQ(free_out[0].text.size(), 20u);
  const std::string stop = free_out[0].text.substr(10, 2);
  const size_t cut = free_out[0].text.find(stop);

  RequestSpec spec = make_spec("s", 6, 20);
  spec.stop = {stop};
  FakeRunner runner(options);
  const auto out = generate(runner, tiny_config(100, 64), {spec});
  EXPECT_EQ(out[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out[0].text, free_out[0].text.substr(0, cut));
  EXPECT_EQ(out[0].output_tokens.size(), cut + stop.size());
}

TEST(Engine, StopTokenEndsTheRequestAndIsNotInTheOutput) {
  testing::FakeRunnerOptions options;
  options.stop_every = 4;
  FakeRunner runner(options);
  RequestSpec spec = make_spec("s", 6, 50);
  spec.ignore_eos = false;
  const auto out = generate(runner, tiny_config(100, 64), {spec});
  ASSERT_EQ(out[0].finish_reason, FinishReason::kStop);
  EXPECT_LT(out[0].output_tokens.size(), 50u);
  for (TokenId t : out[0].output_tokens) EXPECT_NE(t, FakeRunner::kStopToken);
}

TEST(Engine, ReportsTimesOnTheRunnerClock) {
  FakeRunner runner;  // one second per step
  auto out = generate(runner, tiny_config(100, 64), {make_spec("t", 4, 5)});
  EXPECT_DOUBLE_EQ(out[0].arrival_time, 0.0);
  EXPECT_DOUBLE_EQ(out[0].ttft, 1.0);
  EXPECT_DOUBLE_EQ(out[0].mean_tpot, 1.0);
  EXPECT_DOUBLE_EQ(out[0].finish_time, 5.0);
}

TEST(Engine, SplitsStepTimeIntoForwardPruningAndBookkeeping) {
  FakeRunner runner;  // the forward advances the clock by one second; nothing else does
  EngineStats stats;
  generate(runner, tiny_config(100, 64), {make_spec("t", 4, 5)}, &stats);
  EXPECT_DOUBLE_EQ(stats.step_seconds, 5.0);
  EXPECT_DOUBLE_EQ(stats.forward_seconds, 5.0);
  EXPECT_DOUBLE_EQ(stats.prune_seconds, 0.0);
  EXPECT_DOUBLE_EQ(stats.bookkeeping_fraction(), 0.0);
}

TEST(Engine, WaitsForFutureArrivalsOnTheRunnerClock) {
  FakeRunner runner;
  RequestSpec late = make_spec("late", 4, 2);
  late.arrival_time = 10.0;
  auto out = generate(runner, tiny_config(100, 64), {make_spec("now", 4, 2), late});
  EXPECT_DOUBLE_EQ(out[1].arrival_time, 10.0);
  EXPECT_DOUBLE_EQ(out[1].ttft, 1.0);
  EXPECT_GE(out[1].first_token_time, 11.0);
  EXPECT_LT(out[0].finish_time, 10.0);
}

TEST(Engine, FutureIsFulfilledWhenTheRequestEnds) {
  FakeRunner runner;
  Engine engine(runner, tiny_config(100, 64));
  auto [id, future] = engine.submit_future(make_spec("f", 4, 3));
  engine.run_until_idle();
  const RequestOutput out = future.get();
  EXPECT_EQ(out.request_id, id);
  EXPECT_EQ(out.output_tokens.size(), 3u);
}

TEST(Engine, DestroyingABusyEngineCancelsEverythingAndFreesEveryBlock) {
  FakeRunner runner;
  EndRecorder rec;
  {
    Engine engine(runner, tiny_config(100, 8));
    for (int i = 0; i < 5; ++i) engine.submit(make_spec(fmt::format("d{}", i), 10, 10), rec.callback());
    engine.step();
    engine.step();
  }  // the pool's leak check would abort here
  ASSERT_EQ(rec.ended.size(), 5u);
  for (auto& [id, out] : rec.ended) EXPECT_EQ(out.finish_reason, FinishReason::kCancelled);
}

TEST(Engine, RejectsABadConfig) {
  FakeRunner runner;
  EngineConfig config;  // no pool size
  EXPECT_THROW(Engine(runner, config), ConfigError);
  config.num_kv_blocks = 10;
  config.kv_memory_bytes = 1024;  // both
  EXPECT_THROW(Engine(runner, config), ConfigError);
  config.kv_memory_bytes = 0;
  config.default_policy = "nonsense";
  EXPECT_THROW(Engine(runner, config), ConfigError);
  EXPECT_EQ(parse_admission_mode("naive"), AdmissionMode::kNaive);
  EXPECT_THROW(parse_admission_mode("eager"), ConfigError);
}

TEST(Engine, SizesThePoolFromKvMemory) {
  FakeRunner runner;  // 1 list, head_dim 2, f32: 16 bytes per slot, 64 per block of 4
  EngineConfig config = tiny_config(0, 64);
  config.kv_memory_bytes = 64 * 10 + 63;
  Engine engine(runner, config);
  EXPECT_EQ(engine.pool().num_total_blocks(), 10u);
}

}  // namespace
}  // namespace prunekv
