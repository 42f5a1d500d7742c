#include "bench/bench_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <tuple>

#include "common/check.h"

namespace prunekv::bench {
namespace {

double per_second(double amount, double seconds) { return seconds > 0 ? amount / seconds : 0.0; }

double ratio(double value, double base) { return base > 0 ? value / base : 0.0; }

}  // namespace

// Served requests only: a rejected request did no work and must not raise a throughput.
double BenchResult::requests_per_second() const {
  return per_second(double(num_requests - num_failed), elapsed_time);
}
double BenchResult::tokens_per_second() const { return per_second(double(total_num_tokens()), elapsed_time); }
double BenchResult::output_tokens_per_second() const {
  return per_second(double(num_output_tokens), elapsed_time);
}

BenchResult summarize_bench(std::string policy, double elapsed_time,
                            const std::vector<RequestOutput>& outputs, const EngineStats& stats,
                            size_t kv_blocks_total, std::vector<StepStats> timeline) {
  BenchResult r;
  r.policy = std::move(policy);
  r.elapsed_time = elapsed_time;
  r.num_requests = outputs.size();
  double kept_sum = 0.0;
  size_t num_finished = 0;
  for (const auto& out : outputs) {
    if (!out.finished()) {
      ++r.num_failed;
      continue;
    }
    ++num_finished;
    r.num_prompt_tokens += out.num_prompt_tokens;
    r.num_output_tokens += out.output_tokens.size();
    kept_sum += out.kv_kept_fraction;
  }
  r.mean_kv_kept_fraction = num_finished ? kept_sum / double(num_finished) : 1.0;
  r.forward_fraction = ratio(stats.forward_seconds, stats.step_seconds);
  r.prune_fraction = ratio(stats.prune_seconds, stats.step_seconds);
  r.bookkeeping_fraction = stats.bookkeeping_fraction();
  r.kv_blocks_total = kv_blocks_total;
  r.peak_kv_blocks_used = stats.peak_blocks_used;
  r.max_concurrency = stats.peak_running;
  r.num_preemptions = stats.num_preemptions;
  r.blocks_freed_by_pruning = stats.blocks_freed_by_pruning;
  r.blocks_freed_by_generated_pruning = stats.blocks_freed_by_generated_pruning;
  // Weighted by step duration: a long prefill step with 4 sequences counts more than a short
  // decode step with 40, as a user waiting on the run would see it.
  double weighted = 0.0, total = 0.0;
  for (const auto& step : timeline) {
    weighted += step.duration * double(step.num_running);
    total += step.duration;
    if (step.num_prefill_tokens != 0) {
      ++r.num_prefill_steps;
      r.prefill_step_time += step.duration;
      r.num_prefill_tokens += step.num_prefill_tokens;
    } else if (step.num_decode_tokens != 0) {
      ++r.num_decode_steps;
      r.decode_step_time += step.duration;
    }
  }
  r.num_recomputed_tokens = r.num_prefill_tokens > r.num_prompt_tokens ? r.num_prefill_tokens - r.num_prompt_tokens : 0;
  r.mean_concurrency = total > 0 ? weighted / total : stats.mean_running;
  r.timeline = std::move(timeline);
  return r;
}

BenchResult median_run(std::vector<BenchResult> runs) {
  PKV_CHECK(!runs.empty(), "median_run of no runs");
  std::vector<double> times;
  for (const auto& r : runs) times.push_back(r.elapsed_time);
  std::vector<size_t> order(runs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return times[a] < times[b]; });
  BenchResult median = std::move(runs[order[(order.size() - 1) / 2]]);
  median.elapsed_times = std::move(times);
  return median;
}

std::string runs_disagreement(const std::vector<BenchResult>& runs) {
  const auto key = [](const BenchResult& r) {
    return std::tuple(r.num_preemptions, r.blocks_freed_by_pruning, r.peak_kv_blocks_used, r.max_concurrency,
                      r.num_prompt_tokens, r.num_output_tokens, r.num_failed);
  };
  for (size_t i = 1; i < runs.size(); ++i) {
    if (key(runs[i]) != key(runs.front()))
      return fmt::format("{}: run {} scheduled differently from run 1 (preemptions {} vs {}, blocks freed {} vs {})",
                         runs[i].policy, i + 1, runs[i].num_preemptions, runs.front().num_preemptions,
                         runs[i].blocks_freed_by_pruning, runs.front().blocks_freed_by_pruning);
  }
  return {};
}

std::string bench_text(const BenchResult& r) {
  std::string out = fmt::format("Policy: {}\n", r.policy);
  out += fmt::format("Throughput: {:.2f} requests/s, {:.2f} total tokens/s, {:.2f} output tokens/s\n",
                     r.requests_per_second(), r.tokens_per_second(), r.output_tokens_per_second());
  out += fmt::format("Total num prompt tokens:  {}\nTotal num output tokens:  {}\nElapsed time: {:.3f} s\n",
                     r.num_prompt_tokens, r.num_output_tokens, r.elapsed_time);
  out += fmt::format("KV blocks: peak {} / {} used ({:.1f}%); concurrent sequences: mean {:.1f}, max {}\n",
                     r.peak_kv_blocks_used, r.kv_blocks_total,
                     100.0 * ratio(double(r.peak_kv_blocks_used), double(r.kv_blocks_total)),
                     r.mean_concurrency, r.max_concurrency);
  out += fmt::format("Preemptions: {}; blocks freed by pruning: {} (prompts) + {} (during decode); mean kept KV "
                     "fraction: {:.3f}\n",
                     r.num_preemptions, r.blocks_freed_by_pruning, r.blocks_freed_by_generated_pruning,
                     r.mean_kv_kept_fraction);
  out += fmt::format("Step time: forward {:.2f}%, pruning {:.2f}%, scheduling and bookkeeping {:.2f}%\n",
                     100 * r.forward_fraction, 100 * r.prune_fraction, 100 * r.bookkeeping_fraction);
  out += fmt::format("Steps: {} with prefill ({:.3f} s, {} tokens prefilled, {} of them recomputed after "
                     "preemption), {} decode-only ({:.3f} s)\n",
                     r.num_prefill_steps, r.prefill_step_time, r.num_prefill_tokens, r.num_recomputed_tokens,
                     r.num_decode_steps, r.decode_step_time);
  if (r.elapsed_times.size() > 1) {
    const auto [lo, hi] = std::minmax_element(r.elapsed_times.begin(), r.elapsed_times.end());
    out += fmt::format("Repetitions: {}, elapsed {:.3f} s median (min {:.3f}, max {:.3f}); figures above from the "
                       "median run\n",
                       r.elapsed_times.size(), r.elapsed_time, *lo, *hi);
  }
  if (r.num_failed != 0)
    out += fmt::format("num_failed_requests: {} of {} (not counted in the throughput or token totals)\n",
                       r.num_failed, r.num_requests);
  if (r.verify)
    out += fmt::format(
        "Verify: {}/{} sampled requests identical to the full cache (greedy), mean prefix kept {:.3f}\n",
        r.verify->num_exact, r.verify->num_requests, r.verify->mean_prefix_fraction);
  return out;
}

std::string bench_ratio_table(const std::vector<BenchResult>& results) {
  if (results.empty()) return {};
  const BenchResult& base = results.front();
  std::string out = fmt::format(
      "| policy | elapsed s | req/s | tok/s | out tok/s | peak blocks | mean conc | max conc | preempt | "
      "freed | kept | "
      "speed-up vs {} | peak blocks vs {} |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
      base.policy, base.policy);
  for (const auto& r : results)
    out += fmt::format(
        "| {} | {:.3f} | {:.2f} | {:.1f} | {:.1f} | {} | {:.1f} | {} | {} | {} | {:.3f} | {:.2f}x | {:.2f}x "
        "|\n",
        r.policy, r.elapsed_time, r.requests_per_second(), r.tokens_per_second(),
        r.output_tokens_per_second(), r.peak_kv_blocks_used, r.mean_concurrency, r.max_concurrency,
        r.num_preemptions, r.blocks_freed_by_pruning, r.mean_kv_kept_fraction,
        ratio(r.tokens_per_second(), base.tokens_per_second()),
        ratio(double(r.peak_kv_blocks_used), double(base.peak_kv_blocks_used)));
  return out;
}

nlohmann::ordered_json bench_json(const std::vector<BenchResult>& results) {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const auto& r : results) {
    nlohmann::ordered_json o = {{"policy", r.policy},
                                {"elapsed_time", r.elapsed_time},
                                {"num_requests", r.num_requests},
                                {"num_failed_requests", r.num_failed},
                                {"total_num_tokens", r.total_num_tokens()},
                                {"requests_per_second", r.requests_per_second()},
                                {"tokens_per_second", r.tokens_per_second()},
                                {"output_tokens_per_second", r.output_tokens_per_second()},
                                {"peak_kv_blocks_used", r.peak_kv_blocks_used},
                                {"kv_blocks_total", r.kv_blocks_total},
                                {"max_concurrency", r.max_concurrency},
                                {"num_preemptions", r.num_preemptions},
                                {"blocks_freed_by_pruning", r.blocks_freed_by_pruning},
                                {"mean_kv_kept_fraction", r.mean_kv_kept_fraction},
                                {"forward_fraction", r.forward_fraction},
                                {"prune_fraction", r.prune_fraction},
                                {"bookkeeping_fraction", r.bookkeeping_fraction},
                                {"num_prefill_steps", r.num_prefill_steps},
                                {"prefill_step_time", r.prefill_step_time},
                                {"num_decode_steps", r.num_decode_steps},
                                {"decode_step_time", r.decode_step_time},
                                {"num_prefill_tokens", r.num_prefill_tokens},
                                {"num_recomputed_tokens", r.num_recomputed_tokens},
                                {"elapsed_times", r.elapsed_times.empty() ? std::vector<double>{r.elapsed_time}
                                                                          : r.elapsed_times}};
    if (r.verify) {
      o["verify_num_requests"] = r.verify->num_requests;
      o["verify_exact_agreement"] = ratio(double(r.verify->num_exact), double(r.verify->num_requests));
      o["verify_mean_prefix_fraction"] = r.verify->mean_prefix_fraction;
    }
    array.push_back(std::move(o));
  }
  return array;
}

std::vector<PlotPanel> bench_plot_panels(const std::vector<BenchResult>& results) {
  std::vector<PlotPanel> panels{{"KV blocks in use", "blocks", {}},
                                {"running requests", "requests", {}},
                                {"waiting requests", "requests", {}}};
  for (const auto& r : results) {
    PlotSeries blocks{r.policy, {}, {}}, running{r.policy, {}, {}}, waiting{r.policy, {}, {}};
    const double start = r.timeline.empty() ? 0.0 : r.timeline.front().time - r.timeline.front().duration;
    for (const auto& step : r.timeline) {
      const double t = step.time - start;
      for (PlotSeries* s : {&blocks, &running, &waiting}) s->x.push_back(t);
      blocks.y.push_back(double(step.blocks_used));
      running.y.push_back(double(step.num_running));
      waiting.y.push_back(double(step.num_waiting));
    }
    panels[0].series.push_back(std::move(blocks));
    panels[1].series.push_back(std::move(running));
    panels[2].series.push_back(std::move(waiting));
  }
  return panels;
}

}  // namespace prunekv::bench
