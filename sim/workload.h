#pragma once
// Synthetic and recorded workloads for `prunekv simulate` (and the benchmarks): request arrival
// times, prompt and output lengths, and the kept KV fraction each request's pruning reaches.
// Every random draw is seeded; the kept fraction of request i depends only on (seed, i), so
// every policy of one simulation sees the same requests.
//
// Specs (parse errors throw ConfigError naming the spec and what was expected):
//   lengths        fixed:N | uniform:A-B | normal:MEAN,STD (rounded, >= 1) | empirical:FILE[:FIELD]
//   arrivals       all | poisson:RATE (requests/s) | burst:SIZE,INTERVAL (SIZE every INTERVAL s)
//   kept fraction  fixed:F | uniform:A-B | paper:MODEL (paper_budgets.h) | eval:FILE
//                  (per-request kv_kept_fraction of the dbudget entry of `prunekv eval
//                  --output-json`, used in request order, cycling)
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace prunekv::sim {

struct SimulatedRequest {
  double arrival_time = 0.0;  // seconds from the start
  uint32_t prompt_len = 0;    // tokens, >= 1
  uint32_t output_len = 0;    // generated tokens, >= 1 (the request ignores EOS)
};

class LengthDistribution {
 public:
  // `default_field` is the JSONL field empirical files are read from when the spec names none
  // ("prompt_len" / "output_len"), so a trace file can serve as its own length distribution.
  static LengthDistribution parse(std::string_view spec, std::string_view default_field = "");
  uint32_t sample(std::mt19937_64& rng) const;
  const std::string& spec() const { return spec_; }
  double mean() const;  // of the distribution as sampled (normal: before rounding and clamping)

 private:
  enum class Kind : uint8_t { kFixed, kUniform, kNormal, kEmpirical };
  std::string spec_;
  Kind kind_ = Kind::kFixed;
  double a_ = 0, b_ = 0;          // fixed: a; uniform: [a, b]; normal: mean a, std b
  std::vector<uint32_t> values_;  // empirical
};

class ArrivalProcess {
 public:
  static ArrivalProcess parse(std::string_view spec);
  // Non-decreasing arrival times of n requests; the first arrives at 0.
  std::vector<double> arrival_times(size_t n, std::mt19937_64& rng) const;
  const std::string& spec() const { return spec_; }

 private:
  enum class Kind : uint8_t { kAll, kPoisson, kBurst };
  std::string spec_;
  Kind kind_ = Kind::kAll;
  double rate_ = 0;       // poisson
  size_t burst_size_ = 0;  // burst
  double interval_ = 0;
};

class KeptFractionDistribution {
 public:
  static KeptFractionDistribution parse(std::string_view spec);
  // The kept fraction of request `request_index`, in (0, 1]: a pure function of (seed, index).
  double fraction_for(size_t request_index, uint64_t seed) const;
  const std::string& spec() const { return spec_; }

 private:
  enum class Kind : uint8_t { kFixed, kUniform, kPaper, kRecorded };
  std::string spec_;
  Kind kind_ = Kind::kFixed;
  double a_ = 1, b_ = 1;
  std::vector<double> task_budgets_;  // paper: one mean budget per task, tasks equally likely
  double task_spread_ = 0;            // paper: +- this around a task's budget
  std::vector<double> recorded_;      // eval
};

// Reads a trace: one JSON object per line {"arrival_time": s, "prompt_len": n, "output_len": n};
// blank lines are skipped. Throws FormatError naming the file and line for malformed JSON, a
// missing or mistyped field, a negative or non-finite time, or a length < 1. Sorted by arrival.
std::vector<SimulatedRequest> read_trace(const std::string& path);
// The same from text already in memory; `source` names it in errors.
std::vector<SimulatedRequest> parse_trace(std::string_view text, const std::string& source);

struct WorkloadSpec {
  size_t num_requests = 0;
  std::string arrival = "all";
  std::string prompt_len = "fixed:512";
  std::string output_len = "fixed:128";
  uint64_t seed = 0;
};

// Draws num_requests requests (arrivals, prompt and output lengths from independent streams).
std::vector<SimulatedRequest> generate_workload(const WorkloadSpec& spec);

}  // namespace prunekv::sim
