#pragma once
// A ModelRunner with no model for scheduler tests: a tiny KvLayout, a model clock that advances
// by one second per step, and a deterministic next token = f(every token of the sequence so
// far). It also checks what the engine feeds it: every chunk must continue its sequence at the
// next position (or restart it at 0 after a preemption), so a scheduler that skips, repeats or
// misorders tokens fails loudly. Engine thread only.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "scheduler/model_runner.h"

namespace prunekv::testing {

struct FakeRunnerOptions {
  uint32_t num_layers = 1;
  uint32_t num_kv_heads = 1;
  uint32_t num_query_heads = 1;
  uint32_t head_dim = 2;
  uint32_t context_length = 4096;
  uint32_t vocab_size = 64;
  // 1 in stop_every next tokens is the stop token (0 = never).
  uint32_t stop_every = 0;
  // Give the runner a tokenizer whose token t decodes to one letter ('a' + t % 26), so text
  // and stop strings can be tested.
  bool with_tokenizer = false;
};

class FakeRunner : public ModelRunner {
 public:
  static constexpr TokenId kStopToken = 2;

  explicit FakeRunner(FakeRunnerOptions options = {});

  KvLayout kv_layout(uint32_t block_size) const override;
  uint32_t num_query_heads() const override { return options_.num_query_heads; }
  uint32_t context_length() const override { return options_.context_length; }
  uint32_t vocab_size() const override { return options_.vocab_size; }
  std::span<const TokenId> stop_tokens() const override { return stop_tokens_; }
  void execute(const StepBatch& batch, std::span<Sampler* const> samplers, std::vector<TokenId>& next_tokens) override;
  double now() const override { return clock_; }
  void wait_until(double time) override { clock_ = std::max(clock_, time); }
  const Tokenizer* tokenizer() const override { return tokenizer_ ? &*tokenizer_ : nullptr; }

  // The token this runner produces after `tokens` (the same function execute() uses).
  TokenId next_token(std::span<const TokenId> tokens) const;
  size_t num_steps() const { return num_steps_; }

 private:
  FakeRunnerOptions options_;
  std::vector<TokenId> stop_tokens_{kStopToken};
  std::optional<Tokenizer> tokenizer_;
  double clock_ = 0.0;
  size_t num_steps_ = 0;
  // What each sequence has been fed, keyed by its KV (a recycled address restarts at position 0).
  std::unordered_map<const SequenceKv*, std::vector<TokenId>> fed_;
};

}  // namespace prunekv::testing
