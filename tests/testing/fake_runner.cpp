#include "tests/testing/fake_runner.h"

#include <algorithm>

#include "common/check.h"

namespace prunekv::testing {
namespace {

KvLayout fake_layout(const FakeRunnerOptions& o, uint32_t block_size) {
  KvLayout layout;
  layout.num_layers = o.num_layers;
  layout.num_kv_heads = o.num_kv_heads;
  layout.head_dim = o.head_dim;
  layout.block_size = block_size;
  return layout;
}

}  // namespace

FakeRunner::FakeRunner(FakeRunnerOptions options) : options_(options) {
  if (!options_.with_tokenizer) return;
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (uint32_t t = 0; t < options_.vocab_size; ++t) {
    pieces.emplace_back(1, char('a' + t % 26));
    scores.push_back(0.0f);
  }
  tokenizer_.emplace(std::move(pieces), std::move(scores), /*bos_id=*/1, /*eos_id=*/kStopToken,
                     /*byte_fallback_offset=*/-1);
}

KvLayout FakeRunner::kv_layout(uint32_t block_size) const { return fake_layout(options_, block_size); }

TokenId FakeRunner::next_token(std::span<const TokenId> tokens) const {
  // FNV-1a over the whole history: any missing, repeated or reordered token changes the result.
  uint64_t h = 1469598103934665603ull;
  for (TokenId t : tokens) h = (h ^ uint64_t(uint32_t(t))) * 1099511628211ull;
  h ^= h >> 29;
  if (options_.stop_every != 0 && h % options_.stop_every == 0) return kStopToken;
  return static_cast<TokenId>(3 + (h >> 7) % (options_.vocab_size - 3));
}

void FakeRunner::execute(const StepBatch& batch, std::span<Sampler* const> samplers,
                         std::vector<TokenId>& next_tokens) {
  ++num_steps_;
  clock_ += 1.0;
  next_tokens.clear();
  for (const StepSequence& seq : batch.seqs) {
    const Pos first = batch.positions[seq.first_token];
    std::vector<TokenId>& fed = fed_[seq.kv];
    if (first == 0) fed.clear();
    PKV_CHECK(size_t(first) == fed.size(), "chunk starts at position {} but the sequence has {} tokens", first,
              fed.size());
    for (uint32_t i = 0; i < seq.num_tokens; ++i) {
      PKV_CHECK(batch.positions[seq.first_token + i] == first + Pos(i), "positions not consecutive");
      fed.push_back(batch.tokens[seq.first_token + i]);
    }
    // The engine must have appended exactly this step's slots already.
    PKV_CHECK(seq.kv->num_slots(0, 0) >= seq.num_tokens, "slots not appended before the forward");
    if (seq.sample) next_tokens.push_back(next_token(fed));
  }
  PKV_CHECK(next_tokens.size() == samplers.size(), "{} samplers for {} sampling sequences", samplers.size(),
            next_tokens.size());
}

}  // namespace prunekv::testing
