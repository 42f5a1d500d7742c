#pragma once
// `prunekv bench`'s results (vLLM's throughput shape), one per policy, and how they are printed:
// the text block, the ratio table, the --output-json array and the --plot timeline.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/svg_plot.h"
#include "scheduler/engine_stats.h"
#include "scheduler/request.h"

namespace prunekv::bench {

// Greedy agreement of a sample of requests with a full-cache rerun (--verify).
struct VerifyResult {
  size_t num_requests = 0;
  size_t num_exact = 0;
  double mean_prefix_fraction = 0.0;
};

struct BenchResult {
  std::string policy;
  double elapsed_time = 0.0;  // seconds, wall, submission of the first request to the last result
  size_t num_requests = 0;
  size_t num_failed = 0;
  size_t num_prompt_tokens = 0;
  size_t num_output_tokens = 0;
  size_t kv_blocks_total = 0;
  size_t peak_kv_blocks_used = 0;
  double mean_concurrency = 0.0;  // running sequences, weighted by step duration
  size_t max_concurrency = 0;
  size_t num_preemptions = 0;
  size_t blocks_freed_by_pruning = 0;
  size_t blocks_freed_by_generated_pruning = 0;  // --prune-every: pruning during decode
  double mean_kv_kept_fraction = 1.0;  // over finished requests
  // Shares of the engine's step time: forward pass (with sampling), pruning, and the rest
  // (scheduling and block bookkeeping).
  double forward_fraction = 0.0;
  double prune_fraction = 0.0;
  double bookkeeping_fraction = 0.0;
  // Where the steps went: those that computed prompt tokens (a chunk, or a preempted request's
  // recompute, with or without decodes beside it) and decode-only steps; pruning changes the
  // second, preemptions the first.
  size_t num_prefill_steps = 0;
  double prefill_step_time = 0.0;  // seconds, the steps' durations summed
  size_t num_decode_steps = 0;
  double decode_step_time = 0.0;
  size_t num_prefill_tokens = 0;     // computed, recomputed ones included
  size_t num_recomputed_tokens = 0;  // prefill tokens beyond the finished requests' prompts
  std::optional<VerifyResult> verify;
  std::vector<StepStats> timeline;  // one per step
  std::vector<double> elapsed_times;  // --repetitions: every run's elapsed_time, in run order

  size_t total_num_tokens() const { return num_prompt_tokens + num_output_tokens; }
  double requests_per_second() const;
  double tokens_per_second() const;
  double output_tokens_per_second() const;
};

// Folds one policy's run (outputs in input order, the engine totals, the per-step timeline).
BenchResult summarize_bench(std::string policy, double elapsed_time,
                            const std::vector<RequestOutput>& outputs, const EngineStats& stats,
                            size_t kv_blocks_total, std::vector<StepStats> timeline);

// One policy's repeated runs (at least one) as the run of median elapsed time, the lower middle
// one for an even count, with elapsed_times listing every run's.
BenchResult median_run(std::vector<BenchResult> runs);
// Empty when the runs scheduled alike (same preemptions, blocks freed, peak blocks, concurrency
// and tokens: the engine's decisions do not depend on timing), else what differs.
std::string runs_disagreement(const std::vector<BenchResult>& runs);

// "Throughput: X requests/s, Y total tokens/s, Z output tokens/s" and the totals and KV lines.
std::string bench_text(const BenchResult& result);
// One row per policy with its ratios to the first (speed-up, peak blocks, concurrency).
std::string bench_ratio_table(const std::vector<BenchResult>& results);
// The --output-json array: per policy exactly the fields policy, elapsed_time, num_requests,
// total_num_tokens, requests_per_second, tokens_per_second, output_tokens_per_second,
// peak_kv_blocks_used, kv_blocks_total, max_concurrency, num_preemptions,
// blocks_freed_by_pruning, mean_kv_kept_fraction, forward_fraction, prune_fraction,
// bookkeeping_fraction, num_prefill_steps, prefill_step_time, num_decode_steps,
// decode_step_time, num_prefill_tokens, num_recomputed_tokens, elapsed_times; plus verify_num_requests,
// verify_exact_agreement and verify_mean_prefix_fraction when --verify ran.
nlohmann::ordered_json bench_json(const std::vector<BenchResult>& results);
// Three panels (KV blocks in use, running, waiting) over time since the first step, one line per policy.
std::vector<PlotPanel> bench_plot_panels(const std::vector<BenchResult>& results);

}  // namespace prunekv::bench
