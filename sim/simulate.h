#pragma once
// sim/: memory-pressure simulation at scales this machine cannot hold. The real scheduler and
// block pool run unchanged; only the forward pass is priced by a roofline cost model on a device
// profile. Uses common, memory, model, policies and scheduler; nothing above it.
//
// The driver behind `prunekv simulate`: one workload, every policy in turn, then the summary
// table, the JSON array, the per-step CSV and the SVG plot.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "memory/kv_layout.h"
#include "sim/simulation.h"

namespace prunekv::sim {

struct SimulateOptions {
  std::string model_shape;
  std::string device = "H100";
  int threads = 1;  // `cpu` calibration: the engine's worker threads (resolved, > 0)
  std::string kv_memory;
  std::string kv_dtype = "fp16";
  uint32_t block_size = kDefaultBlockSize;
  std::string trace;
  size_t num_requests = 1000;
  std::string arrival = "all";
  std::string prompt_len = "uniform:128-2048";
  std::string output_len = "uniform:64-512";
  std::string policy = "full,dbudget";
  std::string kept_fraction;  // default: paper profile of the model
  size_t max_num_seqs = 256;
  size_t max_num_batched_tokens = 8192;
  std::string admission = "pruning-aware";
  uint64_t seed = 0;
  std::string output_json;
  std::string timeline;
  std::string plot;
};

// One simulation run: the resolved config, the workload size and one result per policy.
struct SimulateRun {
  SimulationConfig config;
  size_t num_requests = 0;
  std::vector<SimulationResult> results;
};

// Builds the config and workload from `options` (throws ConfigError naming the bad option before
// anything runs), then simulates each policy; progress goes to the "sim" log.
SimulateRun simulate(const SimulateOptions& options);

// What `prunekv simulate` prints: a title line, then one row per metric and a column per policy
// with its ratio to the first.
std::string simulate_summary(const SimulateRun& run);

// Writes the files `options` asks for (--output-json, --timeline, --plot); throws ConfigError
// naming a file it cannot write.
void write_simulate_outputs(const SimulateOptions& options, const SimulateRun& run);

}  // namespace prunekv::sim
