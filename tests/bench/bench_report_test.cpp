#include "bench/bench_report.h"

#include <gtest/gtest.h>

namespace prunekv::bench {
namespace {

BenchResult two_second_run(std::string policy) {
  std::vector<RequestOutput> outputs(4);
  for (size_t i = 0; i < outputs.size(); ++i) {
    outputs[i].finish_reason = FinishReason::kLength;
    outputs[i].num_prompt_tokens = 10;
    outputs[i].output_tokens.assign(5, 1);
    outputs[i].kv_kept_fraction = i < 2 ? 0.5 : 1.0;
  }
  outputs[3].finish_reason = FinishReason::kError;  // not counted in tokens or kept fraction
  EngineStats stats;
  stats.peak_blocks_used = 30;
  stats.peak_running = 3;
  stats.num_preemptions = 2;
  stats.blocks_freed_by_pruning = 7;
  stats.step_seconds = 4.0;
  stats.forward_seconds = 3.0;
  stats.prune_seconds = 0.5;
  std::vector<StepStats> timeline(2);
  timeline[0].duration = 1.0;
  timeline[0].num_running = 1;
  timeline[0].time = 1.0;
  timeline[0].num_prefill_tokens = 36;  // 30 prompt tokens + 6 recomputed
  timeline[1].duration = 3.0;
  timeline[1].num_running = 3;
  timeline[1].time = 4.0;
  timeline[1].num_decode_tokens = 3;
  return summarize_bench(std::move(policy), 2.0, outputs, stats, 64, timeline);
}

TEST(BenchReport, SummarisesARun) {
  const BenchResult r = two_second_run("dbudget");
  EXPECT_EQ(r.num_requests, 4u);
  EXPECT_EQ(r.num_failed, 1u);
  EXPECT_EQ(r.num_prompt_tokens, 30u);
  EXPECT_EQ(r.num_output_tokens, 15u);
  EXPECT_EQ(r.total_num_tokens(), 45u);
  EXPECT_DOUBLE_EQ(r.requests_per_second(), 1.5);  // the 3 served requests in 2 s; the failed one did no work
  EXPECT_DOUBLE_EQ(r.tokens_per_second(), 22.5);
  EXPECT_DOUBLE_EQ(r.output_tokens_per_second(), 7.5);
  EXPECT_NEAR(r.mean_kv_kept_fraction, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.mean_concurrency, 2.5);  // (1 x 1 s + 3 x 3 s) / 4 s
  EXPECT_EQ(r.max_concurrency, 3u);
  EXPECT_EQ(r.peak_kv_blocks_used, 30u);
  EXPECT_EQ(r.kv_blocks_total, 64u);
  EXPECT_DOUBLE_EQ(r.forward_fraction, 0.75);
  EXPECT_DOUBLE_EQ(r.prune_fraction, 0.125);
  EXPECT_DOUBLE_EQ(r.bookkeeping_fraction, 0.125);
  EXPECT_EQ(r.num_prefill_steps, 1u);
  EXPECT_DOUBLE_EQ(r.prefill_step_time, 1.0);
  EXPECT_EQ(r.num_decode_steps, 1u);
  EXPECT_DOUBLE_EQ(r.decode_step_time, 3.0);
  EXPECT_EQ(r.num_prefill_tokens, 36u);
  EXPECT_EQ(r.num_recomputed_tokens, 6u);
}

TEST(BenchReport, TextHasVllmThroughputLine) {
  const std::string text = bench_text(two_second_run("full"));
  EXPECT_NE(text.find("Throughput: 1.50 requests/s, 22.50 total tokens/s, 7.50 output tokens/s"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Total num prompt tokens:  30"), std::string::npos);
  EXPECT_NE(text.find("Total num output tokens:  15"), std::string::npos);
  EXPECT_NE(text.find("peak 30 / 64 used"), std::string::npos);
  EXPECT_NE(text.find("mean 2.5, max 3"), std::string::npos);
  EXPECT_NE(text.find("Preemptions: 2; blocks freed by pruning: 7"), std::string::npos);
  EXPECT_NE(text.find("Step time: forward 75.00%, pruning 12.50%, scheduling and bookkeeping 12.50%"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Steps: 1 with prefill (1.000 s, 36 tokens prefilled, 6 of them recomputed after "
                      "preemption), 1 decode-only (3.000 s)"),
            std::string::npos)
      << text;
}

TEST(BenchReport, JsonHasExactlyTheIssueFieldNames) {
  BenchResult verified = two_second_run("dbudget");
  verified.verify = VerifyResult{4, 3, 0.9};
  const auto json = bench_json({two_second_run("full"), verified});
  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), 2u);
  const std::vector<std::string> issue_fields{"policy",
                                              "elapsed_time",
                                              "num_requests",
                                              "num_failed_requests",
                                              "total_num_tokens",
                                              "requests_per_second",
                                              "tokens_per_second",
                                              "output_tokens_per_second",
                                              "peak_kv_blocks_used",
                                              "kv_blocks_total",
                                              "max_concurrency",
                                              "num_preemptions",
                                              "blocks_freed_by_pruning",
                                              "mean_kv_kept_fraction",
                                              "forward_fraction",
                                              "prune_fraction",
                                              "bookkeeping_fraction",
                                              "num_prefill_steps",
                                              "prefill_step_time",
                                              "num_decode_steps",
                                              "decode_step_time",
                                              "num_prefill_tokens",
                                              "num_recomputed_tokens",
                                              "elapsed_times"};
  std::vector<std::string> keys;
  for (const auto& [key, value] : json[0].items()) keys.push_back(key);
  EXPECT_EQ(keys, issue_fields);
  // --verify adds its three fields after them.
  std::vector<std::string> verified_keys;
  for (const auto& [key, value] : json[1].items()) verified_keys.push_back(key);
  std::vector<std::string> expected = issue_fields;
  expected.insert(expected.end(),
                  {"verify_num_requests", "verify_exact_agreement", "verify_mean_prefix_fraction"});
  EXPECT_EQ(verified_keys, expected);
  EXPECT_EQ(json[1]["verify_exact_agreement"], 0.75);
  EXPECT_EQ(json[0]["total_num_tokens"], 45);
  EXPECT_EQ(json[0]["elapsed_times"], nlohmann::json::array({2.0}));  // a single run lists its own time
}

BenchResult run_taking(double seconds) {
  BenchResult r = two_second_run("dbudget");
  r.elapsed_time = seconds;
  r.timeline.front().step = uint64_t(seconds * 10);  // marks which run was kept
  return r;
}

TEST(BenchReport, RepetitionsKeepTheMedianRunAndListEveryTime) {
  const BenchResult odd = median_run({run_taking(3.0), run_taking(1.0), run_taking(2.0)});
  EXPECT_DOUBLE_EQ(odd.elapsed_time, 2.0);
  EXPECT_EQ(odd.timeline.front().step, 20u);  // the whole run, not only its time
  EXPECT_EQ(odd.elapsed_times, (std::vector<double>{3.0, 1.0, 2.0}));
  EXPECT_DOUBLE_EQ(odd.tokens_per_second(), 22.5);
  // An even count keeps the lower middle run (a real run rather than an average of two).
  EXPECT_DOUBLE_EQ(median_run({run_taking(4.0), run_taking(1.0), run_taking(3.0), run_taking(2.0)}).elapsed_time,
                   2.0);
  EXPECT_DOUBLE_EQ(median_run({run_taking(5.0)}).elapsed_time, 5.0);

  const std::string text = bench_text(odd);
  EXPECT_NE(text.find("Repetitions: 3, elapsed 2.000 s median (min 1.000, max 3.000)"), std::string::npos) << text;
  EXPECT_EQ(bench_text(run_taking(2.0)).find("Repetitions"), std::string::npos);
  EXPECT_EQ(bench_json({odd})[0]["elapsed_times"], nlohmann::json::array({3.0, 1.0, 2.0}));
}

TEST(BenchReport, RunsThatScheduledDifferentlyAreNamed) {
  EXPECT_EQ(runs_disagreement({run_taking(1.0), run_taking(2.0)}), "");
  BenchResult other = run_taking(2.0);
  other.num_preemptions = 5;
  const std::string why = runs_disagreement({run_taking(1.0), run_taking(1.5), other});
  EXPECT_NE(why.find("run 3 scheduled differently"), std::string::npos) << why;
  EXPECT_NE(why.find("preemptions 5 vs 2"), std::string::npos) << why;
}

TEST(BenchReport, RatioTableComparesWithTheFirstPolicy) {
  BenchResult full = two_second_run("full");
  BenchResult fast = two_second_run("dbudget");
  fast.elapsed_time = 1.0;
  fast.peak_kv_blocks_used = 15;
  const std::string table = bench_ratio_table({full, fast});
  EXPECT_NE(table.find("speed-up vs full"), std::string::npos);
  EXPECT_NE(table.find("| full |"), std::string::npos);
  EXPECT_NE(table.find("| 2.00x | 0.50x |"), std::string::npos) << table;
}

TEST(BenchReport, PlotHasThreePanelsWithOneSeriesPerPolicy) {
  const auto panels = bench_plot_panels({two_second_run("full"), two_second_run("dbudget")});
  ASSERT_EQ(panels.size(), 3u);
  for (const auto& panel : panels) {
    ASSERT_EQ(panel.series.size(), 2u);
    EXPECT_EQ(panel.series[1].label, "dbudget");
    EXPECT_EQ(panel.series[0].x, (std::vector<double>{1.0, 4.0}));  // since the first step's start
  }
  EXPECT_EQ(panels[1].series[0].y, (std::vector<double>{1.0, 3.0}));
}

}  // namespace
}  // namespace prunekv::bench
