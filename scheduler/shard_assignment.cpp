#include "scheduler/shard_assignment.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>

#include "common/error.h"

namespace prunekv {
namespace {

uint32_t parse_count(const std::string& text, const char* name) {
  uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw ConfigError(fmt::format("{}=\"{}\": expected a non-negative integer", name, text));
  return value;
}

ShardAssignment checked(uint32_t num_shards, uint32_t shard_index, std::string source) {
  if (num_shards == 0) throw ConfigError(fmt::format("{}: expected at least 1 shard, found 0", source));
  if (shard_index >= num_shards)
    throw ConfigError(fmt::format("{}: shard index {} is out of range for {} shards (expected 0 to {})", source,
                                  shard_index, num_shards, num_shards - 1));
  return ShardAssignment{num_shards, shard_index, std::move(source)};
}

// The launcher's (index, size), or nullopt when its index variable is unset.
std::optional<ShardAssignment> from_launcher(std::optional<uint32_t> num_shards_flag, const EnvLookup& env) {
  const auto pair = [&](const char* index_name, const char* size_name) -> std::optional<ShardAssignment> {
    const auto index = env(index_name);
    if (!index) return std::nullopt;
    const auto size = env(size_name);
    if (!size)
      throw ConfigError(fmt::format("{} is set but {} is not: cannot tell how many shards there are",
                                    index_name, size_name));
    return checked(parse_count(*size, size_name), parse_count(*index, index_name),
                   fmt::format("{}/{}", index_name, size_name));
  };
  if (auto shard = pair("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")) return shard;
  if (const auto task_text = env("SLURM_ARRAY_TASK_ID")) {
    const auto count = env("SLURM_ARRAY_TASK_COUNT");
    if (!count)
      throw ConfigError("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: cannot tell how many "
                        "shards there are");
    // --array=1-4 numbers its tasks from 1: the shard index counts from the array's first task.
    const auto min = env("SLURM_ARRAY_TASK_MIN");
    const uint32_t first = min ? parse_count(*min, "SLURM_ARRAY_TASK_MIN") : 0;
    const uint32_t task = parse_count(*task_text, "SLURM_ARRAY_TASK_ID");
    if (task < first)
      throw ConfigError(fmt::format("SLURM_ARRAY_TASK_ID={} is below SLURM_ARRAY_TASK_MIN={}", task, first));
    return checked(parse_count(*count, "SLURM_ARRAY_TASK_COUNT"), task - first,
                   "SLURM_ARRAY_TASK_ID-SLURM_ARRAY_TASK_MIN/SLURM_ARRAY_TASK_COUNT");
  }
  if (const auto index = env("JOB_COMPLETION_INDEX")) {
    if (!num_shards_flag)
      throw ConfigError(
          "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but --num-shards is not: the Job does not "
          "export its size; pass --num-shards equal to .spec.completions");
    return checked(*num_shards_flag, parse_count(*index, "JOB_COMPLETION_INDEX"), "JOB_COMPLETION_INDEX/--num-shards");
  }
  return pair("RANK", "WORLD_SIZE");
}

}  // namespace

std::optional<std::string> process_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::optional<ShardAssignment> select_shard(std::optional<uint32_t> num_shards_flag,
                                            std::optional<uint32_t> shard_index_flag, const EnvLookup& env) {
  if (shard_index_flag) {
    if (!num_shards_flag)
      throw ConfigError("--shard-index needs --num-shards: the index means nothing without the count");
    return checked(*num_shards_flag, *shard_index_flag, "--num-shards/--shard-index");
  }
  auto shard = from_launcher(num_shards_flag, env);
  if (!shard) {
    if (num_shards_flag)
      throw ConfigError(fmt::format(
          "--num-shards {} without --shard-index, and no launcher index in the environment (OMPI_COMM_WORLD_RANK, "
          "SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, RANK): which shard is this?",
          *num_shards_flag));
    return std::nullopt;
  }
  if (num_shards_flag && *num_shards_flag != shard->num_shards)
    throw ConfigError(fmt::format("--num-shards {} disagrees with the launcher's {} shards ({})", *num_shards_flag,
                                  shard->num_shards, shard->source));
  return shard;
}

std::string shard_path(std::string_view pattern, uint32_t shard_index) {
  std::string path;
  const std::string index = std::to_string(shard_index);
  size_t from = 0;
  for (size_t at; (at = pattern.find(kShardPlaceholder, from)) != std::string_view::npos;
       from = at + kShardPlaceholder.size())
    path.append(pattern.substr(from, at - from)).append(index);
  path.append(pattern.substr(from));
  return path;
}

}  // namespace prunekv
