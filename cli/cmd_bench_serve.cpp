// `prunekv bench-serve`: the serving benchmark against a running `prunekv serve`
// (bench/serving_bench.h). The flags, then the run and vLLM's result block.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>

#include "bench/serving_bench.h"
#include "bench/throughput_bench.h"
#include "cli/command_registry.h"
#include "common/error.h"
#include "common/log.h"

namespace prunekv::cli {
namespace {

struct BenchServeArgs {
  std::string url = "http://127.0.0.1:8000";
  std::string input;
  uint32_t output_len = 0;
  float temperature = 0.0f;
  double request_rate = std::numeric_limits<double>::infinity();
  size_t max_concurrency = 0;
  uint64_t seed = 0;
};

int run_bench_serve(const BenchServeArgs& args) {
  bench::ThroughputBenchOptions requests;
  requests.input = args.input;
  requests.output_len = args.output_len;
  requests.temperature = args.temperature;
  requests.seed = args.seed;
  const std::vector<RequestSpec> specs = bench::throughput_bench_file_requests(requests);
  bench::ServingBenchOptions options;
  options.address = bench::parse_server_url(args.url);
  options.request_rate = args.request_rate;
  options.max_concurrency = args.max_concurrency;
  options.seed = args.seed;
  std::printf("prunekv bench-serve: %s, %zu requests from %s (ignore_eos%s), request rate %s, max concurrency %s\n",
              args.url.c_str(), specs.size(), args.input.c_str(),
              args.output_len ? fmt::format(", {} output tokens each", args.output_len).c_str() : "",
              fmt::format("{}", args.request_rate).c_str(),
              args.max_concurrency ? std::to_string(args.max_concurrency).c_str() : "unlimited");
  std::fflush(stdout);
  const bench::ServingBenchResult result = bench::run_serving_bench(options, specs);
  std::fputs(bench::serving_bench_text(result).c_str(), stdout);
  for (size_t i = 0; i < std::min<size_t>(result.errors.size(), 5); ++i)
    log::get("bench")->warn("failed request: {}", result.errors[i]);
  return result.errors.empty() ? 0 : 1;
}

}  // namespace

Command bench_serve_command() {
  auto args = std::make_shared<BenchServeArgs>();
  return Command{
      "bench-serve",
      [args](CLI::App& app) {
        auto* cmd = app.add_subcommand(
            "bench-serve", "serving benchmark against a running prunekv serve (vLLM's TTFT / TPOT / ITL lines)");
        cmd->add_option("--url", args->url, "the server, http://IP:PORT")->capture_default_str();
        cmd->add_option("--input,-i", args->input, "JSONL requests (their prompts and max_tokens)")->required();
        cmd->add_option("--output-len", args->output_len,
                        "tokens to generate per request (overrides max_tokens of --input)");
        cmd->add_option("--temperature", args->temperature, "sampling temperature (0 = greedy)")
            ->capture_default_str();
        cmd->add_option("--request-rate", args->request_rate,
                        "requests per second, Poisson arrivals (default inf: all at once)");
        cmd->add_option("--max-concurrency", args->max_concurrency, "requests in flight at most (0 = no limit)")
            ->capture_default_str();
        cmd->add_option("--seed", args->seed, "arrival times and sampling seed")->capture_default_str();
      },
      [args] { return run_bench_serve(*args); }};
}

}  // namespace prunekv::cli
