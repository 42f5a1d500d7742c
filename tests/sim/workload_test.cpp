#include "sim/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include "sim/paper_budgets.h"
#include "common/error.h"

namespace prunekv::sim {
namespace {

constexpr size_t kDraws = 10000;

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

// Mean and standard deviation of kDraws samples.
std::pair<double, double> moments(const LengthDistribution& d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  double sum = 0, sum_sq = 0;
  for (size_t i = 0; i < kDraws; ++i) {
    const double x = d.sample(rng);
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / kDraws;
  return {mean, std::sqrt(sum_sq / kDraws - mean * mean)};
}

TEST(LengthDistribution, FixedAlwaysDrawsItsValue) {
  const auto d = LengthDistribution::parse("fixed:128");
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(d.sample(rng), 128u);
}

TEST(LengthDistribution, UniformStaysInBoundsWithTheRightMean) {
  const auto d = LengthDistribution::parse("uniform:100-300");
  std::mt19937_64 rng(7);
  std::set<uint32_t> seen;
  for (size_t i = 0; i < kDraws; ++i) {
    const uint32_t x = d.sample(rng);
    ASSERT_GE(x, 100u);
    ASSERT_LE(x, 300u);
    seen.insert(x);
  }
  EXPECT_TRUE(seen.count(100) && seen.count(300));  // both ends reachable
  // std of uniform over 201 values ~ 58; the mean of 10^4 draws is within 0.6 of 200 at 1 sigma.
  EXPECT_NEAR(moments(d, 8).first, 200.0, 3.0);
}

TEST(LengthDistribution, NormalHasItsMeanAndStdAndIsClampedToOne) {
  const auto d = LengthDistribution::parse("normal:500,100");
  const auto [mean, std] = moments(d, 3);
  EXPECT_NEAR(mean, 500.0, 5.0);  // 5 standard errors
  EXPECT_NEAR(std, 100.0, 5.0);
  const auto wide = LengthDistribution::parse("normal:2,50");
  std::mt19937_64 rng(4);
  for (size_t i = 0; i < 1000; ++i) ASSERT_GE(wide.sample(rng), 1u);
}

TEST(LengthDistribution, EmpiricalDrawsFileValuesInProportion) {
  const std::string numbers = write_temp("prunekv_workload_numbers.txt", "10\n\n20\n20\n30\n");
  const auto d = LengthDistribution::parse("empirical:" + numbers);
  std::mt19937_64 rng(5);
  std::map<uint32_t, size_t> counts;
  for (size_t i = 0; i < kDraws; ++i) ++counts[d.sample(rng)];
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_NEAR(double(counts[20]) / kDraws, 0.5, 0.03);
  EXPECT_NEAR(double(counts[10]) / kDraws, 0.25, 0.03);
  std::filesystem::remove(numbers);
}

TEST(LengthDistribution, EmpiricalReadsAJsonlField) {
  const std::string jsonl = write_temp("prunekv_workload_field.jsonl",
                                       R"({"prompt_len": 7, "output_len": 3})" "\n" R"({"prompt_len": 7, "output_len": 3})" "\n");
  std::mt19937_64 rng(1);
  EXPECT_EQ(LengthDistribution::parse("empirical:" + jsonl, "prompt_len").sample(rng), 7u);
  EXPECT_EQ(LengthDistribution::parse("empirical:" + jsonl + ":output_len", "prompt_len").sample(rng), 3u);
  EXPECT_THROW(LengthDistribution::parse("empirical:" + jsonl), FormatError);  // objects but no field
  std::filesystem::remove(jsonl);
}

TEST(LengthDistribution, BadSpecsAreConfigErrors) {
  for (const char* spec : {"fixed:0", "fixed:abc", "uniform:5-2", "uniform:7", "normal:5", "normal:5,-1", "zipf:1", ""})
    EXPECT_THROW(LengthDistribution::parse(spec), ConfigError) << spec;
  EXPECT_THROW(LengthDistribution::parse("empirical:/nonexistent/lengths.txt"), ConfigError);
}

TEST(ArrivalProcess, AllArriveAtZero) {
  std::mt19937_64 rng(1);
  for (double t : ArrivalProcess::parse("all").arrival_times(50, rng)) EXPECT_EQ(t, 0.0);
}

TEST(ArrivalProcess, PoissonInterArrivalMeanIsOneOverRate) {
  std::mt19937_64 rng(11);
  const auto times = ArrivalProcess::parse("poisson:4").arrival_times(kDraws + 1, rng);
  EXPECT_EQ(times.front(), 0.0);
  for (size_t i = 1; i < times.size(); ++i) ASSERT_GE(times[i], times[i - 1]);
  const double mean_gap = times.back() / kDraws;
  EXPECT_NEAR(mean_gap, 0.25, 0.25 * 0.05);
  // Exponential gaps: the standard deviation equals the mean.
  double sum_sq = 0;
  for (size_t i = 1; i < times.size(); ++i) sum_sq += std::pow(times[i] - times[i - 1] - mean_gap, 2);
  EXPECT_NEAR(std::sqrt(sum_sq / kDraws), 0.25, 0.25 * 0.05);
}

TEST(ArrivalProcess, BurstsArriveInGroupsAtTheInterval) {
  std::mt19937_64 rng(1);
  const auto times = ArrivalProcess::parse("burst:3,2.5").arrival_times(7, rng);
  EXPECT_EQ(times, (std::vector<double>{0, 0, 0, 2.5, 2.5, 2.5, 5.0}));
}

TEST(ArrivalProcess, BadSpecsAreConfigErrors) {
  for (const char* spec : {"poisson:0", "poisson:-1", "poisson:x", "burst", "burst:0,1", "burst:4,0", "all:3", "gamma:2"})
    EXPECT_THROW(ArrivalProcess::parse(spec), ConfigError) << spec;
}

TEST(KeptFractionDistribution, FixedAndUniform) {
  EXPECT_EQ(KeptFractionDistribution::parse("fixed:0.6").fraction_for(17, 3), 0.6);
  const auto uniform = KeptFractionDistribution::parse("uniform:0.2-0.8");
  double sum = 0;
  for (size_t i = 0; i < kDraws; ++i) {
    const double f = uniform.fraction_for(i, 9);
    ASSERT_GE(f, 0.2);
    ASSERT_LE(f, 0.8);
    sum += f;
  }
  EXPECT_NEAR(sum / kDraws, 0.5, 0.01);
}

TEST(KeptFractionDistribution, DependsOnlyOnSeedAndRequestIndex) {
  const auto d = KeptFractionDistribution::parse("uniform:0.1-1");
  EXPECT_EQ(d.fraction_for(42, 7), d.fraction_for(42, 7));
  EXPECT_NE(d.fraction_for(42, 7), d.fraction_for(43, 7));
  EXPECT_NE(d.fraction_for(42, 7), d.fraction_for(42, 8));
}

TEST(KeptFractionDistribution, PaperProfilesReproduceTheReportedAverages) {
  for (const auto& [model, average] : {std::pair{"llama3-8b", 0.6368}, {"mistral-7b", 0.8675}, {"qwen2.5-7b", 0.7602}}) {
    const PaperBudgetProfile& profile = paper_budget_profile(model);
    ASSERT_EQ(profile.task_budgets.size(), 13u);
    EXPECT_NEAR(std::accumulate(profile.task_budgets.begin(), profile.task_budgets.end(), 0.0) / 13, average, 1e-9);
    for (double b : profile.task_budgets) EXPECT_TRUE(b > 0 && b <= 1) << model << " " << b;
    EXPECT_GT(profile.task_budgets[0], 0.85);  // math
    const auto d = KeptFractionDistribution::parse(std::string("paper:") + model);
    double sum = 0;
    for (size_t i = 0; i < kDraws; ++i) sum += d.fraction_for(i, 1);
    EXPECT_NEAR(sum / kDraws, average, 0.01) << model;
  }
  EXPECT_NEAR(paper_budget_profile("llama3-8b").task_budgets[1], 0.15, 1e-12);  // QMSum
  EXPECT_THROW(KeptFractionDistribution::parse("paper:gpt-2"), ConfigError);
}

TEST(KeptFractionDistribution, EvalOutputUsesTheDbudgetRequestsInOrder) {
  const std::string path = write_temp("prunekv_workload_eval.json", R"({"policies": [
      {"policy": "full", "requests": [{"kv_kept_fraction": 1.0}]},
      {"policy": "dbudget", "requests": [{"kv_kept_fraction": 0.5}, {"kv_kept_fraction": 0.75}]}]})");
  const auto d = KeptFractionDistribution::parse("eval:" + path);
  EXPECT_EQ(d.fraction_for(0, 1), 0.5);
  EXPECT_EQ(d.fraction_for(1, 1), 0.75);
  EXPECT_EQ(d.fraction_for(2, 1), 0.5);  // cycles
  const std::string no_dbudget = write_temp("prunekv_workload_eval2.json", R"({"policies": [{"policy": "full", "requests": []}]})");
  EXPECT_THROW(KeptFractionDistribution::parse("eval:" + no_dbudget), FormatError);
  std::filesystem::remove(path);
  std::filesystem::remove(no_dbudget);
}

TEST(KeptFractionDistribution, BadSpecsAreConfigErrors) {
  for (const char* spec : {"fixed:0", "fixed:1.5", "uniform:0.5-0.2", "uniform:0-0.5", "gauss:1"})
    EXPECT_THROW(KeptFractionDistribution::parse(spec), ConfigError) << spec;
}

TEST(Trace, ParsesAndSortsByArrival) {
  const auto requests = parse_trace(
      R"({"arrival_time": 1.5, "prompt_len": 10, "output_len": 4})" "\n\n"
      R"({"arrival_time": 0.5, "prompt_len": 20, "output_len": 8, "extra": "ignored"})" "\n",
      "t.jsonl");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].arrival_time, 0.5);
  EXPECT_EQ(requests[0].prompt_len, 20u);
  EXPECT_EQ(requests[1].output_len, 4u);
}

// The message of the FormatError `text` raises.
std::string trace_error(const std::string& text) {
  try {
    parse_trace(text, "t.jsonl");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Trace, BadLinesNameTheLineAndTheProblem) {
  const std::string good = R"({"arrival_time": 0, "prompt_len": 1, "output_len": 1})" "\n";
  EXPECT_NE(trace_error(good + R"({"arrival_time": -1, "prompt_len": 1, "output_len": 1})").find("t.jsonl:2: arrival_time -1"),
            std::string::npos);
  EXPECT_NE(trace_error(good + good + "{\"arrival_time\": 0,").find("t.jsonl:3: malformed JSON"), std::string::npos);
  EXPECT_NE(trace_error(R"({"arrival_time": 0, "output_len": 1})").find("t.jsonl:1: field 'prompt_len' missing"),
            std::string::npos);
  EXPECT_NE(trace_error(R"({"arrival_time": "soon", "prompt_len": 1, "output_len": 1})").find("expected a number"),
            std::string::npos);
  EXPECT_NE(trace_error(R"({"arrival_time": 0, "prompt_len": 0, "output_len": 1})").find("prompt_len = 0"), std::string::npos);
  EXPECT_NE(trace_error("[1, 2]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(trace_error("\n\n").find("no requests"), std::string::npos);
  EXPECT_THROW(read_trace("/nonexistent/trace.jsonl"), ConfigError);
}

TEST(Workload, GeneratesSeededRequests) {
  WorkloadSpec spec{500, "poisson:10", "uniform:10-20", "fixed:5", 42};
  const auto a = generate_workload(spec);
  const auto b = generate_workload(spec);
  ASSERT_EQ(a.size(), 500u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].arrival_time, b[i].arrival_time);
    EXPECT_EQ(a[i].prompt_len, b[i].prompt_len);
    EXPECT_EQ(a[i].output_len, 5u);
  }
  spec.output_len = "fixed:9";  // another output distribution leaves prompts and arrivals alone
  const auto c = generate_workload(spec);
  EXPECT_EQ(c[123].prompt_len, a[123].prompt_len);
  EXPECT_EQ(c[123].arrival_time, a[123].arrival_time);
  spec.num_requests = 0;
  EXPECT_THROW(generate_workload(spec), ConfigError);
}

}  // namespace
}  // namespace prunekv::sim
