#include "scheduler/engine_config.h"

#include <fmt/format.h>

#include "common/byte_size.h"
#include "common/error.h"

namespace prunekv {

std::string_view to_string(AdmissionMode mode) {
  return mode == AdmissionMode::kPruningAware ? "pruning-aware" : "naive";
}

AdmissionMode parse_admission_mode(std::string_view text) {
  if (text == "pruning-aware" || text == "aware") return AdmissionMode::kPruningAware;
  if (text == "naive") return AdmissionMode::kNaive;
  throw ConfigError(fmt::format("admission mode: expected \"pruning-aware\" or \"naive\", found \"{}\"", text));
}

uint64_t parse_kv_memory(std::string_view text) {
  uint64_t bytes = 0;
  try {
    bytes = parse_byte_size(text);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("--kv-memory: {}", e.what()));
  }
  if (bytes == 0)
    throw ConfigError(
        fmt::format("--kv-memory: expected a size above zero such as 512MiB, found \"{}\"", text));
  return bytes;
}

void EngineConfig::validate() const {
  if ((num_kv_blocks == 0) == (kv_memory_bytes == 0))
    throw ConfigError(fmt::format(
        "KV pool size: set exactly one of num_kv_blocks (--kv-blocks) and kv_memory_bytes (--kv-memory); found "
        "num_kv_blocks = {}, kv_memory_bytes = {}",
        num_kv_blocks, kv_memory_bytes));
  if (block_size == 0 || block_size > 4096)
    throw ConfigError(fmt::format("block_size: expected 1..4096, found {}", block_size));
  if (max_num_seqs == 0) throw ConfigError("max_num_seqs: expected >= 1, found 0");
  if (max_num_batched_tokens == 0) throw ConfigError("max_num_batched_tokens: expected >= 1, found 0");
  if (!(admission_reserve_fraction >= 0.0 && admission_reserve_fraction <= 1.0))
    throw ConfigError(fmt::format("admission_reserve_fraction: expected 0..1, found {}", admission_reserve_fraction));
  if (!(forecast_quantile >= 0.0 && forecast_quantile <= 1.0))
    throw ConfigError(fmt::format("forecast_quantile: expected 0..1, found {}", forecast_quantile));
  if (num_threads < 1) throw ConfigError(fmt::format("num_threads: expected >= 1, found {}", num_threads));
  if (default_policy.empty()) throw ConfigError("default_policy: expected a policy spec such as \"full\", found \"\"");
}

size_t EngineConfig::resolve_num_blocks(const KvLayout& layout) const {
  size_t blocks = num_kv_blocks != 0 ? num_kv_blocks : size_t(kv_memory_bytes / layout.bytes_per_block());
  if (blocks == 0)
    throw ConfigError(fmt::format("KV pool: {} bytes hold no block of {} bytes; expected at least one block",
                                  kv_memory_bytes, layout.bytes_per_block()));
  return blocks;
}

}  // namespace prunekv
