#pragma once
// The serving benchmark (vLLM's benchmark_serving shape): replays requests against a running
// `prunekv serve` over HTTP, streamed, at a request rate (Poisson arrivals) or a fixed
// concurrency, and measures from the client: request and token throughput, time to first token
// (TTFT), time per output token after the first (TPOT) and inter-token latency (ITL).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bench/http_client.h"
#include "scheduler/request.h"

namespace prunekv::bench {

struct ServingBenchOptions {
  ServerAddress address;
  // Mean arrivals per second (exponential gaps, seeded); infinity sends them all at once.
  double request_rate = std::numeric_limits<double>::infinity();
  size_t max_concurrency = 0;  // requests in flight at most; 0 = no limit (up to 512 threads)
  uint64_t seed = 0;           // arrival times
};

// Milliseconds.
struct LatencySummary {
  double mean = 0.0, median = 0.0, p99 = 0.0;
};
// Mean, median and 99th percentile (linear interpolation between ranks, as numpy); zeros when empty.
LatencySummary summarize(std::vector<double> values_ms);

struct ServingBenchResult {
  size_t num_requests = 0;
  size_t num_completed = 0;
  std::vector<std::string> errors;  // one per failed request
  double duration = 0.0;             // seconds, first send to last answer
  size_t total_input_tokens = 0;     // of completed requests (server's usage)
  size_t total_output_tokens = 0;
  LatencySummary ttft, tpot, itl;
  double request_throughput() const { return duration > 0 ? double(num_completed) / duration : 0.0; }
  double output_throughput() const { return duration > 0 ? double(total_output_tokens) / duration : 0.0; }
  double total_token_throughput() const {
    return duration > 0 ? double(total_input_tokens + total_output_tokens) / duration : 0.0;
  }
};

// Sends every spec (prompt text or token ids, max_tokens, sampling, stop, ignore_eos, policy)
// as a streamed /v1/completions request with usage. Throws Error when the server cannot be
// reached at all; a request that fails is counted and its error kept.
ServingBenchResult run_serving_bench(const ServingBenchOptions& options, const std::vector<RequestSpec>& specs);

// vLLM's "Serving Benchmark Result" block.
std::string serving_bench_text(const ServingBenchResult& result);

}  // namespace prunekv::bench
