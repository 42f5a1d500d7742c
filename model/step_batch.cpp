#include "model/step_batch.h"

#include "common/check.h"

namespace prunekv {

size_t StepBatch::num_sampling() const {
  size_t n = 0;
  for (const auto& s : seqs) n += s.sample ? 1 : 0;
  return n;
}

void StepBatch::add(SequenceKv* kv, std::span<const TokenId> chunk, Pos first_pos, bool sample,
                    std::optional<StatsRequest> stats) {
  PKV_CHECK(!chunk.empty(), "a step sequence needs at least one token");
  StepSequence seq;
  seq.kv = kv;
  seq.first_token = static_cast<uint32_t>(tokens.size());
  seq.num_tokens = static_cast<uint32_t>(chunk.size());
  seq.sample = sample;
  seq.stats = stats;
  for (size_t i = 0; i < chunk.size(); ++i) {
    tokens.push_back(chunk[i]);
    positions.push_back(first_pos + static_cast<Pos>(i));
  }
  seqs.push_back(seq);
}

}  // namespace prunekv
