#pragma once
// One memory-pressure simulation: the real Engine (scheduler, admission, pruning, count-only
// block pool) driven by the SimulatedRunner's roofline clock over a workload, once per policy.
// `prunekv simulate` and its tests call run_simulation(); printing lives in cmd_simulate.cpp.
#include <cstdint>
#include <string>
#include <vector>

#include "sim/workload.h"
#include "sim/device_profile.h"
#include "model/model_config.h"
#include "scheduler/engine_config.h"
#include "scheduler/engine_stats.h"

namespace prunekv::sim {

struct SimulationConfig {
  ModelConfig model;
  DeviceProfile device;
  KvDtype kv_dtype = KvDtype::kF16;
  uint64_t kv_memory_bytes = 0;  // the pool; > 0
  uint32_t block_size = kDefaultBlockSize;
  size_t max_num_seqs = 256;
  size_t max_num_batched_tokens = 8192;
  AdmissionMode admission = AdmissionMode::kPruningAware;
  std::string kept_fraction = "paper:llama3-8b";  // KeptFractionDistribution spec (dbudget)
  uint64_t seed = 0;
  bool record_timeline = true;
};

// Percentiles use linear interpolation between order statistics (numpy's default).
struct LatencySummary {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};

struct SimulationResult {
  std::string policy;
  double elapsed_time = 0;  // simulated seconds, first step start to last step end
  size_t num_requests = 0;
  size_t num_finished = 0;
  size_t num_failed = 0;
  std::string first_error;  // of the first failed request
  size_t num_prompt_tokens = 0;
  size_t num_output_tokens = 0;
  size_t total_num_tokens() const { return num_prompt_tokens + num_output_tokens; }
  double requests_per_second = 0;
  double tokens_per_second = 0;
  double output_tokens_per_second = 0;
  LatencySummary ttft;  // seconds
  LatencySummary tpot;  // seconds, per request mean time per output token
  size_t kv_blocks_total = 0;
  size_t kv_block_bytes = 0;  // one block: block_size tokens of one layer, every KV head
  size_t peak_kv_blocks_used = 0;
  double mean_kv_blocks_used = 0;  // time-weighted over the run (step durations)
  size_t max_concurrency = 0;      // running sequences, peak
  double mean_concurrency = 0;     // time-weighted
  size_t num_preemptions = 0;
  size_t blocks_freed_by_pruning = 0;
  double mean_kv_kept_fraction = 1.0;  // over finished requests
  size_t num_steps = 0;
  size_t blocks_used_after = 0;        // 0 when every block came back
  double wall_seconds = 0;             // host time the simulation took
  std::vector<StepStats> timeline;     // one per step when recorded
  // Per step: waiting requests that had arrived by the step's start (the engine's num_waiting
  // also counts queued requests whose arrival_time lies ahead).
  std::vector<size_t> timeline_waiting_arrived;
};

// Runs `requests` under `policy` ("full", "dbudget", "snapkv:0.5", ...). Throws ConfigError for a
// bad config or policy.
SimulationResult run_simulation(const SimulationConfig& config, const std::vector<SimulatedRequest>& requests,
                                const std::string& policy);

LatencySummary summarize_latencies(std::vector<double> values);

}  // namespace prunekv::sim
