#pragma once
// bench/: measurement of the engine. The end-to-end throughput bench (vLLM's shape),
// batched-bench (llama-batched-bench's columns) and the fidelity eval, each a function that takes
// options and returns result structs, with their text, JSON and SVG reports; bench/micro/ holds
// the Google Benchmark micro-benchmarks. Uses common, memory, model, policies and scheduler.
//
// The throughput bench: every request is submitted at once and generates a fixed number of
// tokens (ignore_eos); each policy runs the same requests on a fresh engine, so the ratios
// between policies come from one invocation.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_report.h"
#include "model/model.h"
#include "scheduler/engine_config.h"
#include "scheduler/jsonl.h"
#include "scheduler/request.h"
#include "scheduler/transformer_runner.h"

namespace prunekv::bench {

struct ThroughputBenchOptions {
  EngineConfig engine;                // pool, limits, threads, admission; the policy comes from `policies`
  std::vector<std::string> policies;  // each runs the same requests
  uint64_t seed = 0;                  // random prompts and sampling
  // The requests: a JSONL file, or num_prompts random prompts of input_len tokens.
  std::string input;
  size_t num_prompts = 0;
  uint32_t input_len = 0;
  uint32_t output_len = 0;  // with `input`: overrides each line's max_tokens when set
  ReadOptions read;         // --strict, --max-line-bytes
  float temperature = 0.0f;
  bool verify = false;  // rerun a sample with the full cache and report greedy agreement
  size_t verify_samples = 8;
  bool warmup = true;
  size_t repetitions = 1;  // runs of each policy, taken in turn; each reports its median-time run
  // Called after each run when repetitions > 1, with a line such as "run 1/9 full: 0.318 s".
  std::function<void(const std::string&)> on_run;
};

// The requests a bench serves: `input`'s lines or seeded random prompts (vLLM's random dataset),
// every one ignore_eos at the bench's temperature and seed. Throws ConfigError for a bad mix of
// options.
std::vector<RequestSpec> throughput_bench_requests(const ThroughputBenchOptions& options, const Model& model);

// The `input` requests alone, prepared the same way (no model needed: `prunekv bench-serve`
// replays them against a server).
std::vector<RequestSpec> throughput_bench_file_requests(const ThroughputBenchOptions& options);

// The first lines of the report: build, threads, model, pool and requests, enough to reproduce
// any figure below them.
std::string throughput_bench_header(const ThroughputBenchOptions& options, const Model& model,
                                    const TransformerRunner& runner, size_t num_requests);

// Runs every policy over `specs` (options.repetitions times, in turn) and returns one result
// per policy, the median-time run of each.
std::vector<BenchResult> run_throughput_bench(const ThroughputBenchOptions& options, TransformerRunner& runner,
                                              const std::vector<RequestSpec>& specs);

}  // namespace prunekv::bench
