#pragma once
// The options every engine-driving command shares (generate, eval, bench): which model, how big
// the KV pool is, the scheduler's limits, threads, policy and admission mode. One struct, one
// place that declares the flags, one place that turns them into LoadOptions + EngineConfig.
// CLI11 stays in the .cpp: the header only forward-declares CLI::App.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "scheduler/engine_config.h"

namespace CLI {
class App;
}
namespace prunekv {
struct ReadOptions;
}

namespace prunekv::cli {

// Used when neither --kv-blocks nor --kv-memory is given (the arena is reserved, not touched).
inline constexpr const char* kDefaultKvMemory = "512MiB";

struct EngineOptions {
  std::string model;      // path (GGUF / llama2.c) or synthetic:NAME
  std::string tokenizer;  // llama2.c tokenizer.bin
  size_t kv_blocks = 0;   // 0 = use kv_memory
  std::string kv_memory;  // "512MiB"; empty = kDefaultKvMemory unless kv_blocks
  uint32_t block_size = kDefaultBlockSize;
  size_t max_num_seqs = 256;
  size_t max_num_batched_tokens = 2048;
  int threads = 0;              // 0 = every hardware thread
  std::string policy = "full";  // one spec, or a comma list where the command allows
  std::string admission = "pruning-aware";
  std::string kv_dtype = "fp32";  // KV element type: fp32 or fp16
  uint64_t seed = 0;  // sampling / prompt seed (not the synthetic weights)
  uint32_t prune_every = 0;  // --prune-every: decode steps between prunes of generated tokens (0 = off)

  // Worker threads actually used (threads, or the hardware's count when 0).
  int num_threads() const;
  LoadOptions load_options() const;
  // The engine config (pool size, limits, default policy = the first of policy_list(),
  // admission); throws ConfigError for a bad size, admission mode or combination.
  EngineConfig engine_config() const;
  // `policy` split at commas that separate specs (a spec's own parameters use ':' and '=').
  std::vector<std::string> policy_list() const;
};

// The policy of the serving commands (generate, serve) when --policy is not given: the
// threshold-free top-p rule, which on the stories260K golden set keeps 59 of 60 greedy outputs
// exact while freeing about 30% of the prompt blocks (issue 19). Library users and the
// benchmarks keep EngineConfig's "full" unless they ask.
inline constexpr const char* kDefaultServingPolicy = "topp";

// Which shared flags a command declares.
struct EngineOptionSet {
  bool policy = true;        // --policy
  bool policy_list = false;  // --policy takes a comma-separated list
  bool admission = true;     // --admission
  bool seed = true;          // --seed
  bool prune_every = true;   // --prune-every (eval declares its own list)
};

// Declares the shared flags on `command`, bound to `options`, including --policy-help (prints
// the policies and exits).
void add_engine_options(CLI::App& command, EngineOptions& options, EngineOptionSet set = {});

// Declares --strict and --max-line-bytes, how a JSONL --input is read, bound to `options`.
void add_input_options(CLI::App& command, ReadOptions& options);

// Declares --threads/-t, bound to `threads` (0 = every hardware thread); refuses values outside
// 1..hardware threads x 4.
void add_threads_option(CLI::App& command, int& threads, const std::string& description);

// Declares --policy-help: prints every pruning policy with its parameters and exits.
void add_policy_help_flag(CLI::App& command);

// Loads the model named by options (logs what was loaded); throws FormatError / ConfigError.
std::unique_ptr<Model> load_model_for(const EngineOptions& options);

}  // namespace prunekv::cli
