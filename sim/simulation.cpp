#include "sim/simulation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "scheduler/engine.h"
#include "sim/simulated_policy.h"
#include "sim/simulated_runner.h"

namespace prunekv::sim {
namespace {

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = q * double(sorted.size() - 1);
  const size_t lo = size_t(std::floor(rank)), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - double(lo));
}

}  // namespace

LatencySummary summarize_latencies(std::vector<double> values) {
  LatencySummary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / double(values.size());
  s.p50 = percentile(values, 0.50);
  s.p90 = percentile(values, 0.90);
  s.p99 = percentile(values, 0.99);
  return s;
}

SimulationResult run_simulation(const SimulationConfig& config, const std::vector<SimulatedRequest>& requests,
                                const std::string& policy) {
  if (config.kv_memory_bytes == 0) throw ConfigError("simulate: --kv-memory is 0, expected a pool size > 0");
  const KeptFractionDistribution kept = KeptFractionDistribution::parse(config.kept_fraction);
  SimulatedRunner runner(config.model, config.device, config.kv_dtype);
  SimulationResult result;
  result.policy = policy;
  result.num_requests = requests.size();

  EngineConfig engine_config;
  engine_config.kv_memory_bytes = config.kv_memory_bytes;
  engine_config.block_size = config.block_size;
  engine_config.kv_dtype = config.kv_dtype;
  engine_config.storage = BlockPool::Storage::kCountOnly;
  engine_config.max_num_seqs = config.max_num_seqs;
  engine_config.max_num_batched_tokens = config.max_num_batched_tokens;
  engine_config.admission = config.admission;
  engine_config.num_threads = 1;
  engine_config.policy_factory = simulated_policy_factory();
  std::vector<double> arrivals;
  for (const SimulatedRequest& r : requests) arrivals.push_back(r.arrival_time);
  std::sort(arrivals.begin(), arrivals.end());
  // Time-weighted means: each step's state holds for its duration.
  double blocks_time = 0, running_time = 0, total_time = 0;
  engine_config.step_observer = [&](const StepStats& step) {
    blocks_time += double(step.blocks_used) * step.duration;
    running_time += double(step.num_running) * step.duration;
    total_time += step.duration;
    if (!config.record_timeline) return;
    result.timeline.push_back(step);
    const double start = step.time - step.duration;
    const size_t not_arrived = size_t(arrivals.end() - std::upper_bound(arrivals.begin(), arrivals.end(), start));
    result.timeline_waiting_arrived.push_back(step.num_waiting - std::min(step.num_waiting, not_arrived));
  };

  std::vector<double> ttfts, tpots;
  double kept_sum = 0;
  Stopwatch wall;
  {
    Engine engine(runner, std::move(engine_config));
    result.kv_blocks_total = engine.pool().num_total_blocks();
    result.kv_block_bytes = engine.pool().layout().bytes_per_block();
    for (size_t i = 0; i < requests.size(); ++i) {
      const SimulatedRequest& r = requests[i];
      RequestSpec spec;
      spec.id = std::to_string(i);
      spec.prompt_tokens.assign(r.prompt_len, runner.simulated_token());
      spec.max_tokens = r.output_len;
      spec.ignore_eos = true;
      spec.arrival_time = r.arrival_time;
      spec.policy = simulated_policy_spec(policy, kept.fraction_for(i, config.seed));
      engine.submit(std::move(spec), [&](const RequestOutput& out, bool finished) {
        if (!finished) return;
        if (out.finished()) {
          ++result.num_finished;
          result.num_prompt_tokens += out.num_prompt_tokens;
          result.num_output_tokens += out.output_tokens.size();
          ttfts.push_back(out.ttft);
          if (out.output_tokens.size() > 1) tpots.push_back(out.mean_tpot);
          kept_sum += out.kv_kept_fraction;
        } else {
          ++result.num_failed;
          if (result.first_error.empty()) result.first_error = out.error;
        }
      });
    }
    engine.run_until_idle();
    const EngineStats& stats = engine.stats();
    result.elapsed_time = stats.elapsed();
    result.peak_kv_blocks_used = stats.peak_blocks_used;
    result.max_concurrency = stats.peak_running;
    result.num_preemptions = stats.num_preemptions;
    result.blocks_freed_by_pruning = stats.blocks_freed_by_pruning;
    result.num_steps = stats.num_steps;
    result.blocks_used_after = engine.pool().num_used_blocks();
  }
  result.wall_seconds = wall.seconds();
  if (result.elapsed_time > 0) {
    result.requests_per_second = double(result.num_finished) / result.elapsed_time;
    result.tokens_per_second = double(result.total_num_tokens()) / result.elapsed_time;
    result.output_tokens_per_second = double(result.num_output_tokens) / result.elapsed_time;
  }
  if (total_time > 0) {
    result.mean_kv_blocks_used = blocks_time / total_time;
    result.mean_concurrency = running_time / total_time;
  }
  result.ttft = summarize_latencies(std::move(ttfts));
  result.tpot = summarize_latencies(std::move(tpots));
  result.mean_kv_kept_fraction = result.num_finished ? kept_sum / double(result.num_finished) : 1.0;
  if (result.num_failed > 0)
    log::get("sim")->warn("{}: {} of {} requests failed; first: {}", policy, result.num_failed, result.num_requests,
                          result.first_error);
  return result;
}

}  // namespace prunekv::sim
