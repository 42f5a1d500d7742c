// `prunekv simulate`: memory pressure at scales this machine cannot hold (sim/simulate.h). The
// flags and the call; the simulation and its reports live in sim/.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "cli/command_registry.h"
#include "cli/engine_options.h"
#include "sim/simulate.h"

namespace prunekv::cli {
namespace {

struct SimulateArgs {
  sim::SimulateOptions sim;
  int threads = 0;  // `cpu` calibration: the engine's worker threads (0: all hardware threads)
};

}  // namespace

Command simulate_command() {
  auto args = std::make_shared<SimulateArgs>();
  Command command;
  command.name = "simulate";
  command.add = [args](CLI::App& app) {
    auto* sub = app.add_subcommand("simulate",
                                   "Memory-pressure simulation: the real scheduler and block pool with a roofline cost "
                                   "model in place of the forward pass");
    sim::SimulateOptions& o = args->sim;
    sub->add_option("--model-shape", o.model_shape, "Llama-3-8B, Llama-3-70B, Mistral-7B, Qwen2.5-7B, or a GGUF / llama2.c file")
        ->required();
    sub->add_option("--device", o.device, "A100-80GB, H100, H200, cpu (this engine, timed now), or a JSON profile")->capture_default_str();
    add_threads_option(*sub, args->threads, "cpu: worker threads of the engine to calibrate (default: all hardware threads)");
    sub->add_option("--kv-memory", o.kv_memory, "KV pool size, e.g. 60GiB")->required();
    sub->add_option("--kv-dtype", o.kv_dtype, "KV element type: fp16 or fp32")->capture_default_str();
    sub->add_option("--block-size", o.block_size, "tokens per KV block")->capture_default_str();
    auto* trace = sub->add_option("--trace", o.trace, "JSONL trace: {\"arrival_time\", \"prompt_len\", \"output_len\"} per line");
    sub->add_option("--num-requests", o.num_requests, "synthetic workload size")->capture_default_str()->excludes(trace);
    sub->add_option("--arrival", o.arrival, "all, poisson:RATE or burst:SIZE,INTERVAL")->capture_default_str()->excludes(trace);
    sub->add_option("--prompt-len", o.prompt_len, "fixed:N, uniform:A-B, normal:MEAN,STD or empirical:FILE[:FIELD]")
        ->capture_default_str()
        ->excludes(trace);
    sub->add_option("--output-len", o.output_len, "as --prompt-len")->capture_default_str()->excludes(trace);
    sub->add_option("--policy", o.policy, "comma-separated: full, dbudget, or NAME:R fixed-ratio policies")->capture_default_str();
    sub->add_option("--kept-fraction", o.kept_fraction,
                    "dbudget's kept fraction per request: fixed:F, uniform:A-B, paper:MODEL (llama3-8b, mistral-7b, "
                    "qwen2.5-7b; default: the model's), eval:FILE or a `prunekv eval --output-json` FILE");
    sub->add_option("--max-num-seqs", o.max_num_seqs, "running sequences at most")->capture_default_str();
    sub->add_option("--max-num-batched-tokens", o.max_num_batched_tokens, "tokens per step")->capture_default_str();
    sub->add_option("--admission", o.admission, "pruning-aware or naive")->capture_default_str();
    sub->add_option("--seed", o.seed, "workload and kept-fraction seed")->capture_default_str();
    sub->add_option("--output-json", o.output_json, "JSON array, one object per policy");
    sub->add_option("--timeline", o.timeline, "per-step CSV");
    sub->add_option("--plot", o.plot, "SVG of blocks used, running and waiting requests over time");
  };
  command.run = [args] {
    sim::SimulateOptions options = args->sim;
    EngineOptions threads;
    threads.threads = args->threads;
    options.threads = threads.num_threads();
    const sim::SimulateRun run = sim::simulate(options);
    std::fputs(sim::simulate_summary(run).c_str(), stdout);
    sim::write_simulate_outputs(options, run);
    return 0;
  };
  return command;
}

}  // namespace prunekv::cli
