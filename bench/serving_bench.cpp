#include "bench/serving_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/error.h"

namespace prunekv::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

json request_body(const RequestSpec& spec) {
  json body = {{"max_tokens", spec.max_tokens},
               {"temperature", spec.sampling.temperature},
               {"top_p", spec.sampling.top_p},
               {"top_k", spec.sampling.top_k},
               {"seed", spec.sampling.seed},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"ignore_eos", spec.ignore_eos}};
  if (!spec.prompt_tokens.empty()) {
    body["prompt"] = spec.prompt_tokens;
  } else {
    body["prompt"] = spec.prompt;
  }
  if (!spec.stop.empty()) body["stop"] = spec.stop;
  if (!spec.policy.empty()) body["policy"] = spec.policy;
  return body;
}

// One request's client-side timings.
struct Measured {
  bool ok = false;
  std::string error;
  double ttft_ms = 0.0, latency_ms = 0.0;
  std::vector<double> itl_ms;
  size_t input_tokens = 0, output_tokens = 0;
};

Measured send(HttpClient& client, const RequestSpec& spec) {
  Measured m;
  SseParser parser;
  std::vector<std::string> events;
  size_t consumed = 0;
  bool done = false;
  std::string raw;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_token = start;
  size_t token_chunks = 0;
  const int status = client.post_streaming("/v1/completions", request_body(spec).dump(), [&](std::string_view data) {
    const Clock::time_point now = Clock::now();
    raw.append(data.substr(0, std::min<size_t>(data.size(), 512 - std::min<size_t>(raw.size(), 512))));
    parser.feed(data, events);
    for (; consumed < events.size(); ++consumed) {
      if (events[consumed] == "[DONE]") {
        done = true;
        continue;
      }
      const json chunk = json::parse(events[consumed], nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        m.input_tokens = chunk["usage"]["prompt_tokens"].get<size_t>();
        m.output_tokens = chunk["usage"]["completion_tokens"].get<size_t>();
      }
      if (!chunk.contains("choices") || chunk["choices"].empty()) continue;
      // Every choice chunk carries one token (the last may carry none, after a stop token).
      const double since = std::chrono::duration<double, std::milli>(now - (token_chunks == 0 ? start : last_token)).count();
      if (token_chunks == 0) {
        m.ttft_ms = since;
      } else {
        m.itl_ms.push_back(since);
      }
      ++token_chunks;
      last_token = now;
    }
    return true;
  });
  m.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (status != 200 || !done) {
    m.error = fmt::format("status {}{}: {}", status, done ? "" : ", no [DONE]", raw);
    return m;
  }
  m.ok = true;
  return m;
}

}  // namespace

LatencySummary summarize(std::vector<double> v) {
  LatencySummary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / double(v.size());
  auto quantile = [&](double q) {
    const double rank = q * double(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(rank));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (rank - double(lo));
  };
  s.median = quantile(0.5);
  s.p99 = quantile(0.99);
  return s;
}

ServingBenchResult run_serving_bench(const ServingBenchOptions& options, const std::vector<RequestSpec>& specs) {
  if (!(options.request_rate > 0)) throw ConfigError(fmt::format("--request-rate: expected > 0, found {}", options.request_rate));
  {
    HttpClient probe(options.address);  // fail early and clearly when no server listens
    const HttpResponse health = probe.get("/health");
    if (health.status != 200) throw Error(fmt::format("server not ready: GET /health answered {}", health.status));
  }
  // Arrival offsets in seconds: exponential gaps at the request rate (vLLM's Poisson process).
  std::vector<double> arrivals(specs.size(), 0.0);
  if (std::isfinite(options.request_rate)) {
    std::mt19937_64 rng(options.seed);
    std::exponential_distribution<double> gap(options.request_rate);
    double t = 0;
    for (double& a : arrivals) {
      a = t;
      t += gap(rng);
    }
  }
  const size_t workers = std::min(specs.size(), options.max_concurrency > 0 ? options.max_concurrency : size_t(512));
  std::vector<Measured> measured(specs.size());
  std::atomic<size_t> next{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      HttpClient client(options.address);
      for (size_t i; (i = next.fetch_add(1)) < specs.size();) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(arrivals[i])));
        try {
          measured[i] = send(client, specs[i]);
        } catch (const std::exception& e) {
          measured[i].error = e.what();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ServingBenchResult result;
  result.duration = std::chrono::duration<double>(Clock::now() - start).count();
  result.num_requests = specs.size();
  std::vector<double> ttft, tpot, itl;
  for (const Measured& m : measured) {
    if (!m.ok) {
      result.errors.push_back(m.error);
      continue;
    }
    ++result.num_completed;
    result.total_input_tokens += m.input_tokens;
    result.total_output_tokens += m.output_tokens;
    ttft.push_back(m.ttft_ms);
    if (m.output_tokens > 1) tpot.push_back((m.latency_ms - m.ttft_ms) / double(m.output_tokens - 1));
    itl.insert(itl.end(), m.itl_ms.begin(), m.itl_ms.end());
  }
  result.ttft = summarize(std::move(ttft));
  result.tpot = summarize(std::move(tpot));
  result.itl = summarize(std::move(itl));
  return result;
}

std::string serving_bench_text(const ServingBenchResult& r) {
  std::string out;
  auto line = [&](std::string_view name, auto value) { out += fmt::format("{:<40}{:<10}\n", name, value); };
  auto num = [](double v) { return fmt::format("{:.2f}", v); };
  auto section = [&](std::string_view title, char fill) {
    const size_t left = title.size() < 50 ? (50 - title.size()) / 2 : 0;
    const size_t right = title.size() < 50 ? 50 - title.size() - left : 0;
    out += std::string(left, fill) + std::string(title) + std::string(right, fill) + "\n";
  };
  section(" Serving Benchmark Result ", '=');
  line("Successful requests:", r.num_completed);
  if (!r.errors.empty()) line("Failed requests:", r.errors.size());
  line("Benchmark duration (s):", num(r.duration));
  line("Total input tokens:", r.total_input_tokens);
  line("Total generated tokens:", r.total_output_tokens);
  line("Request throughput (req/s):", num(r.request_throughput()));
  line("Output token throughput (tok/s):", num(r.output_throughput()));
  line("Total Token throughput (tok/s):", num(r.total_token_throughput()));
  auto block = [&](std::string_view title, std::string_view name, const LatencySummary& s) {
    section(title, '-');
    line(fmt::format("Mean {} (ms):", name), num(s.mean));
    line(fmt::format("Median {} (ms):", name), num(s.median));
    line(fmt::format("P99 {} (ms):", name), num(s.p99));
  };
  block("Time to First Token", "TTFT", r.ttft);
  block("Time per Output Token (excl. 1st token)", "TPOT", r.tpot);
  block("Inter-token Latency", "ITL", r.itl);
  out += std::string(50, '=') + "\n";
  return out;
}

}  // namespace prunekv::bench
