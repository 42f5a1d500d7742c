#include "cli/engine_options.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "model/model_shape.h"
#include "policies/pruning_policy.h"
#include "scheduler/jsonl.h"

namespace prunekv::cli {

namespace {

// The machine's hardware threads, 1 when it cannot tell.
int hardware_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// For counts where 0 means nothing at all (--kv-blocks 0 is a pool with no block).
CLI::Validator at_least_one() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        return value.find_first_not_of("0") == std::string::npos ? "expected a number >= 1, found " + value : "";
      },
      "", "at least one");
}

}  // namespace

int EngineOptions::num_threads() const { return threads > 0 ? threads : hardware_threads(); }

LoadOptions EngineOptions::load_options() const {
  LoadOptions load;
  load.tokenizer_path = tokenizer;
  return load;
}

std::vector<std::string> EngineOptions::policy_list() const {
  std::vector<std::string> specs;
  size_t begin = 0;
  while (begin <= policy.size()) {
    const size_t end = std::min(policy.find(',', begin), policy.size());
    std::string spec = policy.substr(begin, end - begin);
    if (spec.empty())
      throw ConfigError(fmt::format("--policy: expected comma-separated policy specs, found \"{}\"", policy));
    specs.push_back(std::move(spec));
    begin = end + 1;
  }
  return specs;
}

EngineConfig EngineOptions::engine_config() const {
  EngineConfig config;
  if (kv_blocks != 0 && !kv_memory.empty())
    throw ConfigError(fmt::format("--kv-blocks {} and --kv-memory {}: expected one of them, found both",
                                  kv_blocks, kv_memory));
  if (kv_blocks != 0)
    config.num_kv_blocks = kv_blocks;
  else
    config.kv_memory_bytes = parse_kv_memory(kv_memory.empty() ? kDefaultKvMemory : kv_memory);
  config.block_size = block_size;
  config.max_num_seqs = max_num_seqs;
  config.max_num_batched_tokens = max_num_batched_tokens;
  config.num_threads = num_threads();
  config.admission = parse_admission_mode(admission);
  config.kv_dtype = parse_kv_dtype(kv_dtype);
  const auto specs = policy_list();
  // Fail on a bad spec before any model is loaded or any request runs.
  for (const auto& spec : specs) make_pruning_policy(spec);
  config.default_policy = specs.front();
  config.prune_every = prune_every;
  config.validate();
  return config;
}

void add_policy_help_flag(CLI::App& command) {
  command.add_flag_callback(
      "--policy-help",
      [] {
        std::fputs(pruning_policy_help().c_str(), stdout);
        throw CLI::Success();
      },
      "list the pruning policies and their parameters, then exit");
}

void add_input_options(CLI::App& command, ReadOptions& options) {
  command.add_flag("--strict", options.strict, "an unknown JSONL field is an error for its line (default: a warning)");
  command
      .add_option("--max-line-bytes", options.max_line_bytes,
                  "a longer JSONL line is an error for that line, read without holding it whole")
      ->check(at_least_one())
      ->capture_default_str();
}

void add_threads_option(CLI::App& command, int& threads, const std::string& description) {
  command.add_option("--threads,-t", threads, description)->check(CLI::Range(1, hardware_threads() * 4));
}

void add_engine_options(CLI::App& command, EngineOptions& options, EngineOptionSet set) {
  command.add_option("--model,-m", options.model, "model file (GGUF or llama2.c .bin) or synthetic:NAME")
      ->required();
  command.add_option("--tokenizer", options.tokenizer, "llama2.c tokenizer.bin (GGUF files carry their own)");
  auto* blocks =
      command.add_option("--kv-blocks", options.kv_blocks, "KV pool size in blocks")->check(at_least_one());
  command
      .add_option("--kv-memory", options.kv_memory,
                  fmt::format("KV pool size, e.g. 512MiB, 2GiB (default {})", kDefaultKvMemory))
      ->excludes(blocks);
  command.add_option("--block-size", options.block_size, "token slots per KV block")->capture_default_str();
  command.add_option("--kv-dtype", options.kv_dtype, "KV element type: fp32, or fp16 (half the memory)")
      ->capture_default_str();
  command.add_option("--max-num-seqs", options.max_num_seqs, "running sequences at most")
      ->capture_default_str();
  command.add_option("--max-num-batched-tokens", options.max_num_batched_tokens, "tokens per engine step")
      ->capture_default_str();
  add_threads_option(command, options.threads, "worker threads (default: all hardware threads)");
  if (set.policy) {
    auto* policy = command
                       .add_option("--policy", options.policy,
                                   set.policy_list ? "pruning policies, comma-separated (see --policy-help)"
                                                   : "pruning policy (see --policy-help)")
                       ->capture_default_str();
    // A spec's own parameters use ':' and '=': a comma can only be a list this command cannot run.
    if (!set.policy_list)
      policy->check(
          [](const std::string& value) -> std::string {
            return value.find(',') == std::string::npos
                       ? ""
                       : "one policy expected (only bench and eval compare several): found \"" + value + "\"";
          },
          "POLICY");
    add_policy_help_flag(command);
  }
  if (set.admission)
    command
        .add_option("--admission", options.admission,
                    "admission: pruning-aware (counts forecast pruning) or naive")
        ->capture_default_str();
  if (set.seed) command.add_option("--seed", options.seed, "random seed")->capture_default_str();
  if (set.prune_every)
    command
        .add_option("--prune-every", options.prune_every,
                    "prune during decode: every N decode steps, re-apply the policy's rule to the request's "
                    "generated tokens (topp, topp-blk, dbudget-l1; see --policy-help); 0 = off")
        ->capture_default_str();
}

std::unique_ptr<Model> load_model_for(const EngineOptions& options) {
  return load_model(options.model, options.load_options());
}

}  // namespace prunekv::cli
