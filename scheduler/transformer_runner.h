#pragma once
// The real ModelRunner: a loaded Model run by the batched Transformer, then each sampling
// sequence sampled with its request's Sampler. Wall clock. Engine thread only.
#include <chrono>
#include <memory>
#include <vector>

#include "model/model.h"
#include "model/transformer.h"
#include "scheduler/model_runner.h"

namespace prunekv {

class TransformerRunner : public ModelRunner {
 public:
  // `model` must outlive the runner; num_threads workers for the forward's TBB arena.
  TransformerRunner(const Model& model, int num_threads);

  KvLayout kv_layout(uint32_t block_size) const override;
  uint32_t num_query_heads() const override;
  uint32_t context_length() const override;
  uint32_t vocab_size() const override;
  std::span<const TokenId> stop_tokens() const override;
  const Tokenizer* tokenizer() const override;
  void execute(const StepBatch& batch, std::span<Sampler* const> samplers, std::vector<TokenId>& next_tokens) override;
  bool computes_logits() const override { return true; }
  std::span<const float> logits(size_t sampling_index) const override;
  double now() const override;
  void wait_until(double time) override;

  const Model& model() const { return model_; }

 private:
  const Model& model_;
  Transformer transformer_;
  std::vector<float> logits_;  // [num_sampling][vocab]
  std::chrono::steady_clock::time_point start_;
};

}  // namespace prunekv
