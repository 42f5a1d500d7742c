#pragma once
// One forward step's input: a flat batch of tokens from many sequences, prefill chunks of any
// length and single decode tokens mixed. The caller appends the step's slots to each
// sequence's SequenceKv before the forward; the forward writes K/V into them.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/ids.h"
#include "memory/sequence_kv.h"
#include "memory/slot_stats.h"

namespace prunekv {

struct StepSequence {
  SequenceKv* kv = nullptr;  // its last num_tokens slots in every list belong to this step
  uint32_t first_token = 0;  // index into StepBatch::tokens / positions
  uint32_t num_tokens = 0;
  bool sample = false;       // produce logits for its last token
  std::optional<StatsRequest> stats;  // record attention statistics (kv->has_stats() required)
};

struct StepBatch {
  std::vector<TokenId> tokens;
  std::vector<Pos> positions;
  std::vector<StepSequence> seqs;

  void clear() { tokens.clear(); positions.clear(); seqs.clear(); }
  size_t num_tokens() const { return tokens.size(); }
  size_t num_sampling() const;
  // Adds a sequence's chunk: tokens at consecutive positions starting at first_pos.
  void add(SequenceKv* kv, std::span<const TokenId> chunk, Pos first_pos, bool sample,
           std::optional<StatsRequest> stats = std::nullopt);
};

}  // namespace prunekv
