#pragma once
// What `GET /metrics` reports, in Prometheus' text format: vLLM's metric names under the
// prefix "prunekv:" where vLLM has one, and prunekv's own pruning counters. Written on the
// engine thread (steps, finished requests) and by HTTP threads (refusals); read by any thread.
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "scheduler/engine_stats.h"
#include "scheduler/request.h"

namespace prunekv::server {

// Cumulative-bucket histogram, Prometheus style.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // `name`_bucket{...,le="x"}, `name`_sum, `name`_count lines; `labels` is "k=\"v\"" or "".
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  uint64_t count_ = 0;
  double sum_ = 0.0;
};

// Totals for the periodic status line and tests; a consistent copy.
struct MetricsSnapshot {
  size_t num_running = 0;
  size_t num_waiting = 0;
  size_t blocks_used = 0;
  size_t blocks_total = 0;
  uint64_t prompt_tokens_computed = 0;  // prefill tokens the engine computed (recompute included)
  uint64_t generation_tokens = 0;       // decode tokens the engine computed
  uint64_t requests_finished = 0;       // stop or length
  uint64_t requests_cancelled = 0;
  uint64_t requests_failed = 0;
  uint64_t blocks_freed_by_pruning = 0;
  uint64_t num_pruned = 0;
  double kept_fraction_sum = 0.0;  // over pruned requests
};

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  // Engine thread: each engine step's counters, the queue and pool right after every step()
  // (idle polls included), and each request as it ends.
  void observe_step(const StepStats& step);
  void observe_state(size_t num_running, size_t num_waiting, size_t blocks_used, size_t blocks_total);
  void observe_finished(const RequestOutput& output);
  // HTTP threads: an answer refused before it reached the engine (400, 404, 413, 503).
  void observe_refused(int status);

  MetricsSnapshot snapshot() const;
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::string labels_;  // model_name="..."
  MetricsSnapshot totals_;
  uint64_t num_preemptions_ = 0;
  uint64_t recomputed_tokens_ = 0;
  uint64_t admissions_refused_for_blocks_ = 0;
  uint64_t prompt_tokens_ = 0;      // of finished requests, vLLM's prompt_tokens_total
  uint64_t generation_tokens_ = 0;  // delivered to requests
  uint64_t finished_stop_ = 0, finished_length_ = 0;
  std::vector<std::pair<int, uint64_t>> refused_;  // (status, count)
  Histogram ttft_, tpot_, e2e_, kept_fraction_;
};

}  // namespace prunekv::server
