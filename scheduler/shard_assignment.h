#pragma once
// Which share of a batch this process serves: lines whose index i satisfies
// i mod num_shards == shard_index (round-robin, so long and short prompts spread evenly).
// The shard comes from --num-shards/--shard-index, else from the environment of the launcher
// that started the process, checked in this order:
//   OpenMPI          OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE
//   Slurm job array  SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN / SLURM_ARRAY_TASK_COUNT
//   Kubernetes       JOB_COMPLETION_INDEX / --num-shards (an Indexed Job does not export its size)
//   torchrun         RANK / WORLD_SIZE
// Plain values and free functions.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace prunekv {

struct ShardAssignment {
  uint32_t num_shards = 1;
  uint32_t shard_index = 0;
  std::string source;  // what chose it: "--num-shards/--shard-index" or the variables' names

  bool serves(size_t line_index) const { return line_index % num_shards == shard_index; }
};

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
// The process environment (std::getenv).
std::optional<std::string> process_env(const char* name);

// The shard from the flags, else from the launcher's environment; nullopt when neither names
// one (an unsharded run). Throws ConfigError naming the flag or variable that is missing,
// malformed, out of range, or disagrees with --num-shards.
std::optional<ShardAssignment> select_shard(std::optional<uint32_t> num_shards_flag,
                                            std::optional<uint32_t> shard_index_flag, const EnvLookup& env);

inline constexpr std::string_view kShardPlaceholder = "{shard}";
// `pattern` with every "{shard}" replaced by the index ("out-{shard}.jsonl" -> "out-3.jsonl").
std::string shard_path(std::string_view pattern, uint32_t shard_index);

}  // namespace prunekv
