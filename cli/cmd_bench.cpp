// `prunekv bench`: end-to-end offline throughput in vLLM's shape (bench/throughput_bench.h). The
// flags, then the run and its reports.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_report.h"
#include "bench/throughput_bench.h"
#include "cli/command_registry.h"
#include "cli/engine_options.h"
#include "common/error.h"
#include "common/output_file.h"
#include "common/svg_plot.h"

namespace prunekv::cli {
namespace {

struct BenchArgs {
  EngineOptions engine;
  std::string input;
  size_t num_prompts = 0;
  uint32_t input_len = 0;
  uint32_t output_len = 0;  // with --input: overrides each line's max_tokens when set
  float temperature = 0.0f;
  std::string output_json;
  bool verify = false;
  size_t verify_samples = 8;
  std::string plot;
  bool no_warmup = false;
  ReadOptions read;
  size_t repetitions = 1;
};

int run_bench(const BenchArgs& args) {
  bench::ThroughputBenchOptions options;
  options.engine = args.engine.engine_config();
  options.policies = args.engine.policy_list();
  options.seed = args.engine.seed;
  options.input = args.input;
  options.read = args.read;
  options.num_prompts = args.num_prompts;
  options.input_len = args.input_len;
  options.output_len = args.output_len;
  options.temperature = args.temperature;
  options.verify = args.verify;
  options.verify_samples = args.verify_samples;
  options.warmup = !args.no_warmup;
  options.repetitions = args.repetitions;
  options.on_run = [](const std::string& line) {  // progress: stderr, so stdout holds the results only
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  const auto model = load_model_for(args.engine);
  TransformerRunner runner(*model, args.engine.num_threads());
  const std::vector<RequestSpec> specs = bench::throughput_bench_requests(options, *model);
  std::fputs(bench::throughput_bench_header(options, *model, runner, specs.size()).c_str(), stdout);
  std::fflush(stdout);

  const std::vector<bench::BenchResult> results = bench::run_throughput_bench(options, runner, specs);
  for (const auto& result : results)
    std::printf("%s%s\n", args.repetitions > 1 ? "\n" : "", bench::bench_text(result).c_str());
  if (results.size() > 1) std::printf("%s", bench::bench_ratio_table(results).c_str());
  std::fflush(stdout);

  if (!args.output_json.empty()) write_output_file(args.output_json, "--output-json", bench::bench_json(results).dump(2) + '\n');
  if (!args.plot.empty()) {
    PlotOptions plot;
    plot.title = fmt::format("prunekv bench: {} on {}, {} blocks", model->config.name,
                             args.input.empty() ? "random prompts" : args.input, results.front().kv_blocks_total);
    write_svg_plot(args.plot, bench::bench_plot_panels(results), plot);
  }
  return 0;
}

}  // namespace

Command bench_command() {
  auto args = std::make_shared<BenchArgs>();
  return Command{
      "bench",
      [args](CLI::App& app) {
        auto* cmd =
            app.add_subcommand("bench", "end-to-end offline throughput (vLLM's shape), one run per policy");
        add_engine_options(
            *cmd, args->engine,
            EngineOptionSet{.policy = true, .policy_list = true, .admission = true, .seed = true});
        add_input_options(*cmd, args->read);
        auto* input =
            cmd->add_option("--input,-i", args->input, "JSONL requests (their prompts and max_tokens)");
        cmd->add_option("--num-prompts", args->num_prompts, "random prompts to generate")->excludes(input);
        cmd->add_option("--input-len", args->input_len, "prompt tokens per random prompt")->excludes(input);
        cmd->add_option("--output-len", args->output_len,
                        "tokens to generate per request (overrides max_tokens of --input)");
        cmd->add_option("--temperature", args->temperature, "sampling temperature (0 = greedy)")
            ->capture_default_str();
        cmd->add_option("--output-json", args->output_json,
                        "write one JSON object per policy (an array) here");
        cmd->add_flag("--verify", args->verify,
                      "rerun a sample with the full cache and report greedy agreement");
        cmd->add_option("--verify-samples", args->verify_samples, "requests in the --verify sample")
            ->capture_default_str();
        cmd->add_option("--plot", args->plot, "SVG of blocks in use, running and waiting requests over time");
        cmd->add_flag("--no-warmup", args->no_warmup, "skip the short warm-up run");
        cmd->add_option("--repetitions,-r", args->repetitions,
                        "runs of each policy, taken in turn; each policy's figures come from its median-time run")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
      },
      [args] { return run_bench(*args); }};
}

}  // namespace prunekv::cli
