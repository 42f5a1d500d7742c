// `prunekv batched-bench`: llama-batched-bench's table on prunekv's forward, so CPU users can put
// the two side by side on the same GGUF file (same -npp/-ntg/-npl/-t flags and columns).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/batched_bench.h"
#include "cli/command_registry.h"
#include "cli/engine_options.h"
#include "model/model_shape.h"

namespace prunekv::cli {
namespace {

struct BatchedBenchArgs {
  std::string model;
  std::string tokenizer;
  std::vector<uint32_t> npp{128};
  std::vector<uint32_t> ntg{128};
  std::vector<uint32_t> npl{1, 4, 16};
  int threads = 0;
  uint32_t block_size = kDefaultBlockSize;
  std::string kv_dtype = "fp32";
  size_t n_batch = 2048;
  uint64_t seed = 0;
  std::string output_format = "md";
};

int run_batched_bench(const BatchedBenchArgs& args) {
  EngineOptions engine;  // for the shared model loading and thread count
  engine.model = args.model;
  engine.tokenizer = args.tokenizer;
  engine.threads = args.threads;
  const auto model = load_model_for(engine);

  bench::BatchedBenchOptions options;
  options.num_threads = engine.num_threads();
  options.block_size = args.block_size;
  options.kv_dtype = parse_kv_dtype(args.kv_dtype);
  options.n_batch = args.n_batch;
  options.seed = args.seed;
  bench::BatchedBench bench(*model, options);
  const bool md = args.output_format == "md";
  if (md) {
    std::fputs((bench::batched_bench_md_title(*model, options) + bench::batched_bench_md_header()).c_str(), stdout);
    std::fflush(stdout);
  }
  bench::run_batched_bench(bench, bench::batched_bench_cases(args.npp, args.ntg, args.npl),
                           [&](const bench::BatchedBenchResult& r) {
                             const std::string row =
                                 md ? bench::batched_bench_md_row(r) : bench::batched_bench_jsonl_row(r, options);
                             std::fputs(row.c_str(), stdout);
                             std::fflush(stdout);
                           });
  return 0;
}

}  // namespace

Command batched_bench_command() {
  auto args = std::make_shared<BatchedBenchArgs>();
  return Command{
      "batched-bench",
      [args](CLI::App& app) {
        auto* cmd = app.add_subcommand(
            "batched-bench", "llama-batched-bench's table: prefill and decode speed per batch size");
        cmd->add_option("--model,-m", args->model, "model file (GGUF or llama2.c .bin) or synthetic:NAME")
            ->required();
        cmd->add_option("--tokenizer", args->tokenizer, "llama2.c tokenizer.bin (not needed to benchmark)");
        cmd->add_option("--npp", args->npp,
                        "prompt tokens per sequence, comma-separated (-npp also accepted)")
            ->delimiter(',')
            ->capture_default_str();
        cmd->add_option("--ntg", args->ntg, "generated tokens per sequence, comma-separated (-ntg)")
            ->delimiter(',')
            ->capture_default_str();
        cmd->add_option("--npl", args->npl, "parallel sequences B, comma-separated (-npl)")
            ->delimiter(',')
            ->capture_default_str();
        cmd->add_option("--threads,-t", args->threads, "worker threads (default: all hardware threads)");
        cmd->add_option("--block-size", args->block_size, "token slots per KV block")->capture_default_str();
        cmd->add_option("--kv-dtype", args->kv_dtype, "KV element type: fp32, or fp16 (half the memory)")
            ->capture_default_str();
        cmd->add_option("--batch-size,-b", args->n_batch,
                        "tokens per prefill step at most (llama.cpp's n_batch)")
            ->capture_default_str()
            ->check(CLI::PositiveNumber);
        cmd->add_option("--seed", args->seed, "seed of the token ids fed")->capture_default_str();
        cmd->add_option("--output-format", args->output_format, "md (table) or jsonl")
            ->check(CLI::IsMember({"md", "jsonl"}))
            ->capture_default_str();
      },
      [args] { return run_batched_bench(*args); }};
}

}  // namespace prunekv::cli
