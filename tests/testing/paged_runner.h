#pragma once
// Drives the real Transformer over a BlockPool in tests: owns the pool and the sequences,
// appends each step's slots, builds the StepBatch and hands back the logits. What the scheduler
// does per step, minus scheduling.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "model/model.h"
#include "model/transformer.h"

namespace prunekv::testing {

class PagedRunner {
 public:
  struct Chunk {
    size_t seq = 0;
    std::vector<TokenId> tokens;
    bool sample = true;
    std::optional<StatsRequest> stats;
  };

  // with_stats: sequences carry slot statistics (G per KV head).
  PagedRunner(const Model& model, uint32_t block_size, size_t num_blocks, int num_threads,
              bool with_stats = false);
  ~PagedRunner();

  // A new empty sequence; returns its index.
  size_t add_sequence();
  SequenceKv& kv(size_t seq) { return *seqs_.at(seq).kv; }
  // Tokens fed to a sequence so far (its next position is their count).
  size_t num_fed(size_t seq) const { return seqs_.at(seq).num_fed; }

  // One forward over every chunk (positions continue each sequence); PKV_CHECK-fails when the
  // pool is short. Returns the logits of the sampling chunks, in order: [num_sampling][vocab].
  const std::vector<float>& step(const std::vector<Chunk>& chunks);
  std::span<const float> logits_row(size_t sampling_index) const;

  BlockPool& pool() { return *pool_; }
  Transformer& transformer() { return transformer_; }

 private:
  struct Seq {
    std::unique_ptr<SequenceKv> kv;
    size_t num_fed = 0;
  };
  const Model& model_;
  std::unique_ptr<BlockPool> pool_;  // declared before seqs_: outlives them
  std::vector<Seq> seqs_;
  uint32_t stats_group_;
  Transformer transformer_;
  StepBatch batch_;
  std::vector<Pos> positions_;
  std::vector<float> logits_;
};

// Greedy generation of many sequences batched together, the way the engine does it: step 1
// prefills every prompt (in chunks of at most chunk_size tokens per step when chunk_size > 0),
// then all unfinished sequences decode together. A sequence stops at a stop token (not
// returned) or after max_new[i] tokens.
std::vector<std::vector<TokenId>> generate_greedy_batched(const Model& model,
                                                          const std::vector<std::vector<TokenId>>& prompts,
                                                          const std::vector<size_t>& max_new,
                                                          uint32_t block_size, int num_threads,
                                                          size_t chunk_size = 0);

}  // namespace prunekv::testing
