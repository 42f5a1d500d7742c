#include "sim/simulated_runner.h"

#include <algorithm>

#include "common/check.h"

namespace prunekv::sim {

SimulatedRunner::SimulatedRunner(const ModelConfig& config, const DeviceProfile& device, KvDtype kv_dtype)
    : config_(config), kv_dtype_(kv_dtype), cost_model_(config, device, kv_dtype) {}

KvLayout SimulatedRunner::kv_layout(uint32_t block_size) const {
  // Simulated policies cut whole layers, every KV head alike, so one list per layer holding all
  // KV heads side by side takes exactly the memory of one list per (layer, KV head), in blocks
  // H_kv times larger, with 1/H_kv of the per-token bookkeeping (256 -> 32 lists for Llama-3-8B).
  KvLayout layout = config_.kv_layout(block_size, kv_dtype_);
  layout.head_dim *= layout.num_kv_heads;
  layout.num_kv_heads = 1;
  return layout;
}

void SimulatedRunner::execute(const StepBatch& batch, std::span<Sampler* const> samplers,
                              std::vector<TokenId>& next_tokens) {
  work_.clear();
  for (const StepSequence& seq : batch.seqs) {
    PKV_DCHECK(seq.kv != nullptr, "step sequence without KV");
    // Each slot of a lumped list stands for one slot of every KV head of its layer.
    work_.push_back({seq.num_tokens, seq.kv->num_slots_total() * config_.num_kv_heads, seq.sample});
  }
  last_cost_ = cost_model_.step_cost(work_);
  clock_ += last_cost_.seconds;
  busy_seconds_ += last_cost_.seconds;
  next_tokens.assign(samplers.size(), simulated_token());
}

void SimulatedRunner::wait_until(double time) { clock_ = std::max(clock_, time); }

}  // namespace prunekv::sim
