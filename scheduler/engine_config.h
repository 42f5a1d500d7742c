#pragma once
// Engine sizing and scheduling knobs, one named field each. validate() throws ConfigError.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "memory/block_pool.h"
#include "memory/kv_layout.h"
#include "scheduler/engine_stats.h"

namespace prunekv {

class PruningPolicy;

// kPruningAware lets admission count blocks that running prefills are forecast to release once
// pruned; kNaive counts free blocks only (the baseline for comparison).
enum class AdmissionMode : uint8_t { kPruningAware, kNaive };
std::string_view to_string(AdmissionMode mode);            // "pruning-aware", "naive"
AdmissionMode parse_admission_mode(std::string_view text);  // throws ConfigError

// Parses a --kv-memory value ("512MiB", "2GiB", "4096"); throws ConfigError naming the flag,
// what was expected and what was found, and rejects 0.
uint64_t parse_kv_memory(std::string_view text);

using PolicyFactory = std::function<std::unique_ptr<PruningPolicy>(std::string_view spec)>;

struct EngineConfig {
  // Pool size: exactly one of these (blocks = kv_memory_bytes / layout.bytes_per_block()).
  size_t num_kv_blocks = 0;
  uint64_t kv_memory_bytes = 0;
  uint32_t block_size = kDefaultBlockSize;
  KvDtype kv_dtype = KvDtype::kF32;
  BlockPool::Storage storage = BlockPool::Storage::kArena;  // kCountOnly for the simulator
  // Map the whole pool at start-up (BlockPool::commit_memory) rather than as blocks are first
  // written: benchmarks, so no timed step pays first-touch page faults.
  bool commit_kv_memory = false;

  size_t max_num_seqs = 256;             // running sequences at most
  size_t max_num_batched_tokens = 2048;  // tokens per step (decodes + prefill chunks)

  std::string default_policy = "full";   // for requests whose spec names none
  // Pruning during decode: every prune_every decode steps of a request whose policy
  // prunes_generated(), its rule is re-applied to the generated tokens (0 = off: the prompt
  // prune is the only one, and decode queries record nothing).
  uint32_t prune_every = 0;
  AdmissionMode admission = AdmissionMode::kPruningAware;
  // Pruning-aware admission: blocks held back from forecast credit, as a share of the pool.
  double admission_reserve_fraction = 0.05;
  // Predicted kept block fraction = this quantile of the observed ones (higher = more careful),
  // and no credit at all until forecast_min_observations prunes of that policy were seen.
  double forecast_quantile = 0.9;
  size_t forecast_min_observations = 3;

  int num_threads = 1;                   // TBB arena for parallel pruning
  // Builds policies from specs; empty = make_pruning_policy. Tests and the simulator inject here.
  PolicyFactory policy_factory;
  StepObserver step_observer;            // optional, called after every step

  void validate() const;
  // Blocks of the pool for this layout (block_size/dtype of the layout are this config's).
  size_t resolve_num_blocks(const KvLayout& layout) const;
};

}  // namespace prunekv
