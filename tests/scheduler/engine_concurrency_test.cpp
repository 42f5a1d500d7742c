// 8 producer threads x 1,000 requests with random cancellations against one engine thread:
// every request ends exactly once, no block leaks, the pool is all free at the end.
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "scheduler/engine.h"
#include "tests/scheduler/engine_test_util.h"
#include "tests/testing/fake_runner.h"
#include "tests/testing/scripted_policy.h"

// boost::lockfree's node freelist reads a node's next pointer that another thread may be
// recycling, on purpose (the tagged-pointer CAS rejects the stale value); TSan reports it
// (boostorg/lockfree#78). Only races with a boost::lockfree frame are suppressed.
extern "C" const char* __tsan_default_suppressions() { return "race:boost::lockfree::\n"; }

namespace prunekv {
namespace {

TEST(EngineConcurrency, EveryRequestFromManyProducersEndsExactlyOnce) {
  constexpr int kProducers = 8;
  constexpr int kPerProducer = 1000;
  constexpr size_t kTotal = size_t{kProducers} * kPerProducer;

  testing::FakeRunnerOptions options;
  options.stop_every = 11;
  testing::FakeRunner runner(options);
  testing::ScriptedPolicy policy({0.5});
  EngineConfig config = testing::tiny_config(48, 32);  // small: preemptions happen
  config.policy_factory = testing::scripted_factory(policy);
  // One pruning thread: TSan cannot see oneTBB's own synchronisation (libtbb is not
  // instrumented) and would flag its partitioner; parallel pruning is covered by the unit tests.
  config.num_threads = 1;
  Engine engine(runner, config);

  // Written by the engine thread only (callbacks run there); read after it joined.
  std::vector<int> end_count(kTotal + 1, 0);
  std::vector<FinishReason> reasons(kTotal + 1, FinishReason::kError);
  auto on_output = [&](const RequestOutput& out, bool finished) {
    if (!finished) return;
    ++end_count.at(out.request_id);
    reasons.at(out.request_id) = out.finish_reason;
  };

  std::atomic<int> producers_done{0};
  std::atomic<size_t> cancels_sent{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937_64 rng(1000 + p);
      std::vector<RequestId> mine;
      for (int i = 0; i < kPerProducer; ++i) {
        RequestSpec spec = testing::make_spec(fmt::format("p{}-{}", p, i), 2 + rng() % 20, 1 + uint32_t(rng() % 12));
        spec.ignore_eos = rng() % 2 == 0;
        if (rng() % 4 == 0) spec.policy = "scripted";
        mine.push_back(engine.submit(std::move(spec), on_output));
        if (rng() % 5 == 0) {  // cancel a recent one: queued, running or already ended
          engine.cancel(mine[rng() % mine.size()]);
          cancels_sent.fetch_add(1);
        }
      }
      producers_done.fetch_add(1);
    });
  }
  std::thread engine_thread([&] {
    while (producers_done.load() < kProducers || engine.has_unfinished()) {
      if (!engine.step()) std::this_thread::yield();
    }
  });
  for (auto& t : producers) t.join();
  engine_thread.join();

  size_t cancelled = 0;
  for (size_t id = 1; id <= kTotal; ++id) {
    ASSERT_EQ(end_count[id], 1) << "request " << id;
    EXPECT_NE(reasons[id], FinishReason::kError) << "request " << id;
    cancelled += reasons[id] == FinishReason::kCancelled;
  }
  EXPECT_GT(cancelled, 0u);
  EXPECT_LE(cancelled, cancels_sent.load());
  const EngineStats& stats = engine.stats();
  EXPECT_EQ(stats.num_requests_finished + stats.num_requests_cancelled + stats.num_requests_failed, kTotal);
  EXPECT_GT(stats.num_preemptions, 0u);
  EXPECT_EQ(engine.pool().num_free_blocks(), engine.pool().num_total_blocks());
  EXPECT_EQ(engine.num_running() + engine.num_waiting(), 0u);
}

}  // namespace
}  // namespace prunekv
