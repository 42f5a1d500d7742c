#include "server/server_metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace prunekv::server {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[bucket];
  ++count_;
  sum_ += value;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds_[i], cumulative);
  }
  fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, count_);
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, sum_, name, labels,
                 count_);
}

namespace {

// vLLM's bucket bounds for these histograms.
std::vector<double> ttft_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> tpot_buckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> e2e_buckets() {
  return {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0};
}
std::vector<double> fraction_buckets() { return {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0}; }

}  // namespace

ServerMetrics::ServerMetrics(std::string model_name)
    : labels_(fmt::format("model_name=\"{}\"", model_name)),
      ttft_(ttft_buckets()),
      tpot_(tpot_buckets()),
      e2e_(e2e_buckets()),
      kept_fraction_(fraction_buckets()) {}

void ServerMetrics::observe_step(const StepStats& step) {
  std::lock_guard lock(mutex_);
  totals_.prompt_tokens_computed += step.num_prefill_tokens;
  totals_.generation_tokens += step.num_decode_tokens;
  totals_.blocks_freed_by_pruning += step.blocks_freed_by_pruning;
  num_preemptions_ += step.num_preemptions;
  recomputed_tokens_ += step.num_recomputed_tokens;
  admissions_refused_for_blocks_ += step.num_admissions_refused_for_blocks;
}

void ServerMetrics::observe_state(size_t num_running, size_t num_waiting, size_t blocks_used, size_t blocks_total) {
  std::lock_guard lock(mutex_);
  totals_.num_running = num_running;
  totals_.num_waiting = num_waiting;
  totals_.blocks_used = blocks_used;
  totals_.blocks_total = blocks_total;
}

void ServerMetrics::observe_finished(const RequestOutput& output) {
  std::lock_guard lock(mutex_);
  switch (output.finish_reason) {
    case FinishReason::kStop: ++totals_.requests_finished, ++finished_stop_; break;
    case FinishReason::kLength: ++totals_.requests_finished, ++finished_length_; break;
    case FinishReason::kCancelled: ++totals_.requests_cancelled; break;
    case FinishReason::kError: ++totals_.requests_failed; return;  // never ran: no tokens, no times
  }
  prompt_tokens_ += output.num_prompt_tokens;
  generation_tokens_ += output.output_tokens.size();
  if (!output.output_tokens.empty()) ttft_.observe(output.ttft);
  if (output.output_tokens.size() > 1) tpot_.observe(output.mean_tpot);
  e2e_.observe(output.finish_time - output.arrival_time);
  if (output.kv_kept_fraction < 1.0 || output.blocks_freed_by_pruning > 0) {
    ++totals_.num_pruned;
    totals_.kept_fraction_sum += output.kv_kept_fraction;
    kept_fraction_.observe(output.kv_kept_fraction);
  }
}

void ServerMetrics::observe_refused(int status) {
  std::lock_guard lock(mutex_);
  for (auto& [s, n] : refused_)
    if (s == status) {
      ++n;
      return;
    }
  refused_.emplace_back(status, 1);
}

MetricsSnapshot ServerMetrics::snapshot() const {
  std::lock_guard lock(mutex_);
  return totals_;
}

std::string ServerMetrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  auto emit = [&](std::string_view name, std::string_view type, std::string_view help, auto value,
                  std::string_view extra_labels = {}) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{}{{{}{}}} {}\n", name, help, name, type,
                   name, labels_, extra_labels, value);
  };
  const double usage =
      totals_.blocks_total > 0 ? double(totals_.blocks_used) / double(totals_.blocks_total) : 0.0;
  emit("prunekv:num_requests_running", "gauge", "Requests holding KV blocks (vLLM's running).", totals_.num_running);
  emit("prunekv:num_requests_waiting", "gauge", "Requests waiting for admission.", totals_.num_waiting);
  emit("prunekv:kv_cache_usage_perc", "gauge", "Fraction of KV blocks in use (1 = full).", usage);
  emit("prunekv:num_preemptions_total", "counter", "Preemptions (recompute).", num_preemptions_);
  emit("prunekv:prompt_tokens_total", "counter", "Prompt tokens of ended requests.", prompt_tokens_);
  emit("prunekv:generation_tokens_total", "counter", "Tokens generated for ended requests.", generation_tokens_);
  fmt::format_to(std::back_inserter(out),
                 "# HELP prunekv:request_success_total Requests ended, by finish reason (abort = cancelled).\n"
                 "# TYPE prunekv:request_success_total counter\n");
  fmt::format_to(std::back_inserter(out), "prunekv:request_success_total{{{},finished_reason=\"stop\"}} {}\n", labels_,
                 finished_stop_);
  fmt::format_to(std::back_inserter(out), "prunekv:request_success_total{{{},finished_reason=\"length\"}} {}\n", labels_,
                 finished_length_);
  fmt::format_to(std::back_inserter(out), "prunekv:request_success_total{{{},finished_reason=\"abort\"}} {}\n", labels_,
                 totals_.requests_cancelled);
  emit("prunekv:request_failure_total", "counter", "Requests the engine refused (bad prompt, too long, pool too small).",
       totals_.requests_failed);
  auto histogram = [&](const Histogram& h, std::string_view name, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    h.render(out, std::string(name), labels_);
  };
  histogram(ttft_, "prunekv:time_to_first_token_seconds", "Time to first token, from engine intake.");
  histogram(tpot_, "prunekv:time_per_output_token_seconds", "Mean time per output token after the first.");
  histogram(e2e_, "prunekv:e2e_request_latency_seconds", "Engine intake to end of request.");
  emit("prunekv:blocks_freed_by_pruning_total", "counter", "KV blocks pruning gave back to the pool.",
       totals_.blocks_freed_by_pruning);
  histogram(kept_fraction_, "prunekv:kv_kept_fraction", "Fraction of prompt KV entries kept, per pruned request.");
  emit("prunekv:recomputed_tokens_total", "counter", "Tokens computed again after a preemption.", recomputed_tokens_);
  emit("prunekv:admissions_refused_for_blocks_total", "counter",
       "Engine steps whose admission stopped at a request for want of KV blocks.", admissions_refused_for_blocks_);
  fmt::format_to(std::back_inserter(out),
                 "# HELP prunekv:http_requests_refused_total HTTP requests answered with an error before the engine.\n"
                 "# TYPE prunekv:http_requests_refused_total counter\n");
  for (const auto& [status, n] : refused_)
    fmt::format_to(std::back_inserter(out), "prunekv:http_requests_refused_total{{{},status=\"{}\"}} {}\n", labels_,
                   status, n);
  return out;
}

}  // namespace prunekv::server
