#pragma once
// The simulator's ModelRunner: the real engine, scheduler and (count-only) block pool run
// unchanged, and only the forward pass is replaced by the roofline CostModel. execute() prices
// the step from the StepBatch (tokens per sequence, each sequence's KV slots actually held, so
// pruned sequences read less) and advances a simulated clock; every sampled token is the same
// non-stop token, so requests run to their max_tokens (ignore_eos semantics).
#include <vector>

#include "sim/cost_model.h"
#include "model/model_config.h"
#include "scheduler/model_runner.h"

namespace prunekv::sim {

class SimulatedRunner : public ModelRunner {
 public:
  // The KV dtype must match EngineConfig::kv_dtype (it prices KV bytes).
  SimulatedRunner(const ModelConfig& config, const DeviceProfile& device, KvDtype kv_dtype);

  // One list per layer with every KV head in it (see the .cpp): same bytes, fewer lists.
  KvLayout kv_layout(uint32_t block_size) const override;
  uint32_t num_query_heads() const override { return config_.num_heads; }
  uint32_t context_length() const override { return config_.context_length; }
  uint32_t vocab_size() const override { return config_.vocab_size; }
  std::span<const TokenId> stop_tokens() const override { return {}; }
  void execute(const StepBatch& batch, std::span<Sampler* const> samplers, std::vector<TokenId>& next_tokens) override;
  double now() const override { return clock_; }
  // Jumps the clock forward (never back): idle time until the next arrival.
  void wait_until(double time) override;

  // The token every sampling sequence receives.
  TokenId simulated_token() const { return config_.vocab_size > 3 ? 3 : 0; }
  const StepCost& last_step_cost() const { return last_cost_; }
  double busy_seconds() const { return busy_seconds_; }  // clock time spent in steps
  const CostModel& cost_model() const { return cost_model_; }
  const ModelConfig& config() const { return config_; }

 private:
  ModelConfig config_;
  KvDtype kv_dtype_;
  CostModel cost_model_;
  double clock_ = 0.0;
  double busy_seconds_ = 0.0;
  StepCost last_cost_;
  std::vector<SequenceWork> work_;  // per-step scratch
};

}  // namespace prunekv::sim
