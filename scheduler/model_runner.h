#pragma once
// What the engine needs from a model: the KV geometry, stop tokens, and one step (forward +
// sample). The real runner wraps Transformer; the simulator's runner replaces the forward with a
// roofline cost model and advances simulated time, so the same scheduler and pool run in both.
#include <span>
#include <vector>

#include "common/ids.h"
#include "memory/kv_layout.h"
#include "model/sampler.h"
#include "model/tokenizer.h"
#include "model/step_batch.h"

namespace prunekv {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual KvLayout kv_layout(uint32_t block_size) const = 0;
  virtual uint32_t num_query_heads() const = 0;
  virtual uint32_t context_length() const = 0;
  virtual uint32_t vocab_size() const = 0;
  virtual std::span<const TokenId> stop_tokens() const = 0;
  // For text prompts, stop strings and output text; nullptr when the model has none.
  virtual const Tokenizer* tokenizer() const { return nullptr; }
  // Runs one step; for each sampling sequence of `batch` (in order) samples with the matching
  // entry of `samplers` and writes the token to next_tokens (resized to batch.num_sampling()).
  virtual void execute(const StepBatch& batch, std::span<Sampler* const> samplers, std::vector<TokenId>& next_tokens) = 0;
  // The logits (vocab_size floats) the last execute() sampled sampling sequence i from; empty
  // when this runner computes none (the simulator), which computes_logits() says up front.
  virtual bool computes_logits() const { return false; }
  virtual std::span<const float> logits(size_t sampling_index) const {
    (void)sampling_index;
    return {};
  }
  // Seconds on this runner's clock: wall time for real models, model time for the simulator.
  virtual double now() const = 0;
  // Called when nothing can run before `time` (every waiting request arrives later): the
  // simulator advances its clock, a real runner sleeps. Default: nothing.
  virtual void wait_until(double time) { (void)time; }
};

}  // namespace prunekv
