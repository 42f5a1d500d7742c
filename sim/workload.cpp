#include "sim/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/paper_budgets.h"
#include "common/error.h"

namespace prunekv::sim {
namespace {

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("{} file '{}': cannot open it", what, path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Splits "kind:rest"; rest is empty when there is no colon.
std::pair<std::string_view, std::string_view> split_kind(std::string_view spec) {
  const size_t colon = spec.find(':');
  if (colon == std::string_view::npos) return {spec, {}};
  return {spec.substr(0, colon), spec.substr(colon + 1)};
}

double parse_number(std::string_view text, std::string_view spec, const char* expected) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    throw ConfigError(fmt::format("'{}': '{}' is not a number, expected {}", spec, text, expected));
  return value;
}

// "A<sep>B" as two numbers.
std::pair<double, double> parse_pair(std::string_view text, char sep, std::string_view spec, const char* expected) {
  const size_t at = text.find(sep, text.starts_with('-') ? 1 : 0);
  if (at == std::string_view::npos)
    throw ConfigError(fmt::format("'{}': expected {}", spec, expected));
  return {parse_number(text.substr(0, at), spec, expected), parse_number(text.substr(at + 1), spec, expected)};
}

// A JSON value at `line` of `source` as a number, or a FormatError naming both.
double json_number(const nlohmann::json& object, const char* field, const std::string& source, size_t line) {
  if (!object.contains(field))
    throw FormatError(fmt::format("{}:{}: field '{}' missing", source, line, field));
  const auto& value = object[field];
  if (!value.is_number())
    throw FormatError(fmt::format("{}:{}: field '{}' is {}, expected a number", source, line, field, value.type_name()));
  return value.get<double>();
}

// Each non-blank line: a number, or a JSON object holding `field`.
std::vector<double> read_number_column(const std::string& path, const std::string& field) {
  const std::string text = read_file(path, "empirical");
  std::vector<double> values;
  std::istringstream lines(text);
  std::string line;
  for (size_t line_no = 1; std::getline(lines, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded())
      throw FormatError(fmt::format("{}:{}: not a number or a JSON object", path, line_no));
    if (json.is_number()) {
      values.push_back(json.get<double>());
    } else if (json.is_object()) {
      if (field.empty())
        throw FormatError(fmt::format("{}:{}: a JSON object, but no field named (use empirical:FILE:FIELD)", path, line_no));
      values.push_back(json_number(json, field.c_str(), path, line_no));
    } else {
      throw FormatError(fmt::format("{}:{}: {} found, expected a number or a JSON object", path, line_no, json.type_name()));
    }
  }
  if (values.empty()) throw FormatError(fmt::format("{}: no values found", path));
  return values;
}

// SplitMix64: decorrelates (seed, request index) pairs into independent RNG seeds.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
LengthDistribution LengthDistribution::parse(std::string_view spec, std::string_view default_field) {
  LengthDistribution d;
  d.spec_ = std::string(spec);
  const auto [kind, rest] = split_kind(spec);
  if (kind == "fixed") {
    d.kind_ = Kind::kFixed;
    d.a_ = parse_number(rest, spec, "fixed:N with N >= 1");
    if (d.a_ < 1) throw ConfigError(fmt::format("'{}': length {} < 1, expected >= 1", spec, d.a_));
  } else if (kind == "uniform") {
    d.kind_ = Kind::kUniform;
    std::tie(d.a_, d.b_) = parse_pair(rest, '-', spec, "uniform:A-B with 1 <= A <= B");
    if (d.a_ < 1 || d.b_ < d.a_) throw ConfigError(fmt::format("'{}': expected uniform:A-B with 1 <= A <= B", spec));
  } else if (kind == "normal") {
    d.kind_ = Kind::kNormal;
    std::tie(d.a_, d.b_) = parse_pair(rest, ',', spec, "normal:MEAN,STD with STD >= 0");
    if (d.b_ < 0) throw ConfigError(fmt::format("'{}': standard deviation {} < 0", spec, d.b_));
  } else if (kind == "empirical") {
    d.kind_ = Kind::kEmpirical;
    std::string path(rest), field(default_field);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && path.rfind(':') != std::string::npos) {
      field = path.substr(path.rfind(':') + 1);
      path = path.substr(0, path.rfind(':'));
    }
    if (path.empty()) throw ConfigError(fmt::format("'{}': expected empirical:FILE[:FIELD]", spec));
    for (double value : read_number_column(path, field)) {
      if (!(value >= 1)) throw FormatError(fmt::format("{}: length {} < 1, expected >= 1", path, value));
      d.values_.push_back(static_cast<uint32_t>(std::lround(value)));
    }
  } else {
    throw ConfigError(fmt::format("length distribution '{}': expected fixed:N, uniform:A-B, normal:MEAN,STD or empirical:FILE",
                                  spec));
  }
  return d;
}

uint32_t LengthDistribution::sample(std::mt19937_64& rng) const {
  switch (kind_) {
    case Kind::kFixed:
      return static_cast<uint32_t>(std::lround(a_));
    case Kind::kUniform:
      return static_cast<uint32_t>(std::uniform_int_distribution<uint64_t>(std::llround(a_), std::llround(b_))(rng));
    case Kind::kNormal: {
      const double x = std::normal_distribution<double>(a_, b_)(rng);
      return static_cast<uint32_t>(std::max(1.0, std::round(std::min(x, 4e9))));
    }
    case Kind::kEmpirical:
      return values_[std::uniform_int_distribution<size_t>(0, values_.size() - 1)(rng)];
  }
  return 1;
}

double LengthDistribution::mean() const {
  switch (kind_) {
    case Kind::kFixed: return std::round(a_);
    case Kind::kUniform: return (std::round(a_) + std::round(b_)) / 2;
    case Kind::kNormal: return a_;
    case Kind::kEmpirical: {
      double sum = 0;
      for (uint32_t v : values_) sum += v;
      return sum / double(values_.size());
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
ArrivalProcess ArrivalProcess::parse(std::string_view spec) {
  ArrivalProcess p;
  p.spec_ = std::string(spec);
  const auto [kind, rest] = split_kind(spec);
  if (kind == "all" && rest.empty()) {
    p.kind_ = Kind::kAll;
  } else if (kind == "poisson") {
    p.kind_ = Kind::kPoisson;
    p.rate_ = parse_number(rest, spec, "poisson:RATE with RATE > 0 requests/s");
    if (!(p.rate_ > 0)) throw ConfigError(fmt::format("'{}': rate {} <= 0, expected requests/s > 0", spec, p.rate_));
  } else if (kind == "burst") {
    const auto [size, interval] = parse_pair(rest, ',', spec, "burst:SIZE,INTERVAL (SIZE >= 1 requests every INTERVAL > 0 s)");
    if (size < 1 || !(interval > 0))
      throw ConfigError(fmt::format("'{}': expected burst:SIZE,INTERVAL with SIZE >= 1 and INTERVAL > 0", spec));
    p.kind_ = Kind::kBurst;
    p.burst_size_ = static_cast<size_t>(size);
    p.interval_ = interval;
  } else {
    throw ConfigError(fmt::format("arrival process '{}': expected all, poisson:RATE or burst:SIZE,INTERVAL", spec));
  }
  return p;
}

std::vector<double> ArrivalProcess::arrival_times(size_t n, std::mt19937_64& rng) const {
  std::vector<double> times(n, 0.0);
  if (kind_ == Kind::kPoisson) {
    std::exponential_distribution<double> gap(rate_);
    for (size_t i = 1; i < n; ++i) times[i] = times[i - 1] + gap(rng);
  } else if (kind_ == Kind::kBurst) {
    for (size_t i = 0; i < n; ++i) times[i] = double(i / burst_size_) * interval_;
  }
  return times;
}

// ---------------------------------------------------------------------------------------------
KeptFractionDistribution KeptFractionDistribution::parse(std::string_view spec) {
  KeptFractionDistribution d;
  d.spec_ = std::string(spec);
  const auto [kind, rest] = split_kind(spec);
  auto check_fraction = [&](double f) {
    if (!(f > 0 && f <= 1)) throw ConfigError(fmt::format("'{}': kept fraction {} outside (0, 1]", spec, f));
  };
  if (kind == "fixed") {
    d.kind_ = Kind::kFixed;
    d.a_ = parse_number(rest, spec, "fixed:F with 0 < F <= 1");
    check_fraction(d.a_);
  } else if (kind == "uniform") {
    d.kind_ = Kind::kUniform;
    std::tie(d.a_, d.b_) = parse_pair(rest, '-', spec, "uniform:A-B with 0 < A <= B <= 1");
    check_fraction(d.a_);
    check_fraction(d.b_);
    if (d.b_ < d.a_) throw ConfigError(fmt::format("'{}': expected uniform:A-B with A <= B", spec));
  } else if (kind == "paper") {
    const PaperBudgetProfile& profile = paper_budget_profile(rest);
    d.kind_ = Kind::kPaper;
    d.task_budgets_ = profile.task_budgets;
    d.task_spread_ = profile.within_task_spread;
  } else if (kind == "eval") {
    const std::string path(rest);
    const std::string text = read_file(path, "eval");
    nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("policies") || !json["policies"].is_array())
      throw FormatError(fmt::format("{}: expected `prunekv eval --output-json` output, an object with a \"policies\" array",
                                    path));
    const nlohmann::json* chosen = nullptr;
    std::string seen;
    for (const auto& entry : json["policies"]) {
      const std::string name = entry.value("policy", "");
      seen += (seen.empty() ? "" : ", ") + name;
      if (name == "dbudget" || (!chosen && name.starts_with("dbudget"))) chosen = &entry;
    }
    if (!chosen) throw FormatError(fmt::format("{}: no dbudget entry among policies [{}]", path, seen));
    if (!chosen->contains("requests") || !(*chosen)["requests"].is_array())
      throw FormatError(fmt::format("{}: the dbudget entry has no \"requests\" array", path));
    size_t index = 0;
    for (const auto& request : (*chosen)["requests"]) {
      if (!request.is_object() || !request.contains("kv_kept_fraction") || !request["kv_kept_fraction"].is_number())
        throw FormatError(fmt::format("{}: dbudget request {} has no numeric kv_kept_fraction", path, index));
      const double f = request["kv_kept_fraction"].get<double>();
      if (!(f > 0 && f <= 1))
        throw FormatError(fmt::format("{}: dbudget request {}: kv_kept_fraction {} outside (0, 1]", path, index, f));
      d.recorded_.push_back(f);
      ++index;
    }
    if (d.recorded_.empty()) throw FormatError(fmt::format("{}: the dbudget entry lists no requests", path));
    d.kind_ = Kind::kRecorded;
  } else {
    throw ConfigError(fmt::format("kept fraction '{}': expected fixed:F, uniform:A-B, paper:MODEL or eval:FILE", spec));
  }
  return d;
}

double KeptFractionDistribution::fraction_for(size_t request_index, uint64_t seed) const {
  std::mt19937_64 rng(mix(seed ^ mix(request_index)));
  switch (kind_) {
    case Kind::kFixed:
      return a_;
    case Kind::kUniform:
      return std::uniform_real_distribution<double>(a_, b_)(rng);
    case Kind::kPaper: {
      const double task = task_budgets_[std::uniform_int_distribution<size_t>(0, task_budgets_.size() - 1)(rng)];
      const double f = std::uniform_real_distribution<double>(task - task_spread_, task + task_spread_)(rng);
      return std::clamp(f, 0.01, 1.0);
    }
    case Kind::kRecorded:
      return recorded_[request_index % recorded_.size()];
  }
  return 1.0;
}

// ---------------------------------------------------------------------------------------------
std::vector<SimulatedRequest> parse_trace(std::string_view text, const std::string& source) {
  std::vector<SimulatedRequest> requests;
  size_t line_no = 0, begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded()) throw FormatError(fmt::format("{}:{}: malformed JSON", source, line_no));
    if (!json.is_object())
      throw FormatError(fmt::format("{}:{}: {} found, expected a JSON object", source, line_no, json.type_name()));
    SimulatedRequest request;
    request.arrival_time = json_number(json, "arrival_time", source, line_no);
    if (!(request.arrival_time >= 0) || !std::isfinite(request.arrival_time))
      throw FormatError(fmt::format("{}:{}: arrival_time {} is negative or not finite, expected seconds >= 0", source,
                                    line_no, request.arrival_time));
    for (auto [field, out] : {std::pair{"prompt_len", &request.prompt_len}, std::pair{"output_len", &request.output_len}}) {
      const double value = json_number(json, field, source, line_no);
      if (!(value >= 1) || value > 1e9 || value != std::floor(value))
        throw FormatError(fmt::format("{}:{}: {} = {}, expected an integer >= 1", source, line_no, field, value));
      *out = static_cast<uint32_t>(value);
    }
    requests.push_back(request);
  }
  if (requests.empty()) throw FormatError(fmt::format("{}: the trace holds no requests", source));
  std::stable_sort(requests.begin(), requests.end(),
                   [](const SimulatedRequest& a, const SimulatedRequest& b) { return a.arrival_time < b.arrival_time; });
  return requests;
}

std::vector<SimulatedRequest> read_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("trace file '{}': cannot open it", path));
  std::stringstream text;
  text << in.rdbuf();
  return parse_trace(text.str(), path);
}

std::vector<SimulatedRequest> generate_workload(const WorkloadSpec& spec) {
  if (spec.num_requests == 0) throw ConfigError("workload: --num-requests is 0, expected at least 1");
  const ArrivalProcess arrivals = ArrivalProcess::parse(spec.arrival);
  const LengthDistribution prompt = LengthDistribution::parse(spec.prompt_len, "prompt_len");
  const LengthDistribution output = LengthDistribution::parse(spec.output_len, "output_len");
  // One stream each, so changing one distribution leaves the others' draws unchanged.
  std::mt19937_64 arrival_rng(mix(spec.seed ^ 1)), prompt_rng(mix(spec.seed ^ 2)), output_rng(mix(spec.seed ^ 3));
  const std::vector<double> times = arrivals.arrival_times(spec.num_requests, arrival_rng);
  std::vector<SimulatedRequest> requests(spec.num_requests);
  for (size_t i = 0; i < spec.num_requests; ++i) {
    requests[i].arrival_time = times[i];
    requests[i].prompt_len = prompt.sample(prompt_rng);
    requests[i].output_len = output.sample(output_rng);
  }
  return requests;
}

}  // namespace prunekv::sim
