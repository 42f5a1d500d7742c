#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command_registry.h"
#include "common/error.h"

namespace prunekv::cli {
namespace {

std::string temp_path(const std::string& name) { return (std::filesystem::temp_directory_path() / name).string(); }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Parses `args` (after "prunekv") into a fresh simulate command and runs it.
int run_simulate(std::vector<std::string> args) {
  CLI::App app{"test"};
  Command command = simulate_command();
  command.add(app);
  args.insert(args.begin(), "simulate");
  std::reverse(args.begin(), args.end());  // CLI11's vector parse takes arguments in reverse
  app.parse(args);
  return command.run();
}

TEST(SimulateCommand, WritesJsonTimelineAndPlotForEachPolicy) {
  const std::string trace = temp_path("prunekv_sim_cmd_trace.jsonl");
  {
    std::ofstream out(trace);
    for (int i = 0; i < 30; ++i) out << R"({"arrival_time": )" << 0.05 * i << R"(, "prompt_len": 700, "output_len": 40})" << "\n";
  }
  const std::string json = temp_path("prunekv_sim_cmd.json"), csv = temp_path("prunekv_sim_cmd.csv"),
                    svg = temp_path("prunekv_sim_cmd.svg");
  // 2 GiB of fp16 Llama-3-8B KV holds ~16k tokens: about 20 of these requests unpruned.
  ASSERT_EQ(run_simulate({"--model-shape", "Llama-3-8B", "--device", "A100-80GB", "--kv-memory", "2GiB", "--trace", trace,
                          "--policy", "full,dbudget", "--kept-fraction", "fixed:0.5", "--output-json", json, "--timeline",
                          csv, "--plot", svg}),
            0);
  const auto results = nlohmann::json::parse(slurp(json));
  ASSERT_TRUE(results.is_array());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0]["policy"], "full");
  EXPECT_EQ(results[1]["policy"], "dbudget");
  for (const char* field :
       {"elapsed_time", "num_requests", "total_num_tokens", "requests_per_second", "tokens_per_second",
        "output_tokens_per_second", "peak_kv_blocks_used", "kv_blocks_total", "kv_block_bytes", "max_concurrency", "num_preemptions",
        "blocks_freed_by_pruning", "mean_kv_kept_fraction", "p50_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "p50_tpot_ms",
        "p99_tpot_ms"})
    EXPECT_TRUE(results[0].contains(field) && results[1].contains(field)) << field;
  EXPECT_EQ(results[0]["num_requests"], 30);
  EXPECT_EQ(results[0]["total_num_tokens"], 30 * 740);
  EXPECT_EQ(results[0]["blocks_freed_by_pruning"], 0);
  EXPECT_GT(results[1]["blocks_freed_by_pruning"].get<size_t>(), 0u);
  EXPECT_NEAR(results[1]["mean_kv_kept_fraction"].get<double>(), 0.5, 0.02);

  const std::string timeline = slurp(csv);
  EXPECT_EQ(timeline.rfind("policy,step,time,", 0), 0u);
  EXPECT_NE(timeline.find("\nfull,0,"), std::string::npos);
  EXPECT_NE(timeline.find("\ndbudget,0,"), std::string::npos);
  const std::string plot = slurp(svg);
  EXPECT_NE(plot.find("</svg>"), std::string::npos);
  EXPECT_EQ(std::count(plot.begin(), plot.end(), 'p') > 0, true);
  EXPECT_NE(plot.find("KV blocks used"), std::string::npos);
  for (const auto& path : {trace, json, csv, svg}) std::filesystem::remove(path);
}

TEST(SimulateCommand, BadInputsAreClearErrors) {
  EXPECT_THROW(run_simulate({"--model-shape", "Llama-9", "--kv-memory", "1GiB", "--num-requests", "2"}), ConfigError);
  EXPECT_THROW(run_simulate({"--model-shape", "Llama-3-8B", "--kv-memory", "0", "--num-requests", "2"}), ConfigError);
  EXPECT_THROW(run_simulate({"--model-shape", "Llama-3-8B", "--kv-memory", "1GiB", "--device", "abacus"}), ConfigError);
  EXPECT_THROW(run_simulate({"--model-shape", "Llama-3-8B", "--kv-memory", "1GiB", "--arrival", "poisson:-2"}), ConfigError);
  EXPECT_THROW(run_simulate({"--model-shape", "Llama-3-8B", "--kv-memory", "1GiB", "--policy", "snapkv"}), ConfigError);
  const std::string trace = temp_path("prunekv_sim_cmd_negative.jsonl");
  std::ofstream(trace) << R"({"arrival_time": -3, "prompt_len": 5, "output_len": 5})" << "\n";
  try {
    run_simulate({"--model-shape", "Llama-3-8B", "--kv-memory", "1GiB", "--trace", trace});
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(":1: arrival_time -3"), std::string::npos) << e.what();
  }
  std::filesystem::remove(trace);
}

}  // namespace
}  // namespace prunekv::cli
