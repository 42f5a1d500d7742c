#include "sim/cost_model.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"

namespace prunekv::sim {

CostModel::CostModel(const ModelConfig& config, const DeviceProfile& device, KvDtype kv_dtype)
    : config_(config), device_(device) {
  device_.validate();
  if (config.num_layers == 0 || config.num_heads == 0 || config.num_kv_heads == 0 || config.dim == 0 ||
      config.num_heads % config.num_kv_heads != 0 || config.dim % config.num_heads != 0)
    throw ConfigError(fmt::format("cost model: model '{}' has an invalid shape (layers {}, dim {}, heads {}, kv heads {})",
                                  config.name, config.num_layers, config.dim, config.num_heads, config.num_kv_heads));
  const double dim = config.dim, kv_dim = config.kv_dim(), hidden = config.hidden_dim;
  params_per_layer_ = dim * dim + 2 * kv_dim * dim + dim * dim + 3 * dim * hidden;
  classifier_params_ = double(config.vocab_size) * dim;
  kv_slot_bytes_ = 2.0 * config.head_dim() * double(kv_dtype_bytes(kv_dtype));
  num_lists_ = double(config.num_layers) * config.num_kv_heads;
}

double CostModel::weight_bytes_total() const {
  return double(device_.weight_bytes_per_param) * (params_per_layer_ * config_.num_layers + classifier_params_);
}

StepCost CostModel::step_cost(std::span<const SequenceWork> seqs) const {
  StepCost cost;
  double num_tokens = 0, num_sampled = 0, visible_keys = 0, slots_held = 0;
  for (const SequenceWork& seq : seqs) {
    const double n = double(seq.num_tokens);
    num_tokens += n;
    num_sampled += seq.sample ? 1 : 0;
    visible_keys += n * double(seq.kv_slots_total) - num_lists_ * n * (n - 1) / 2;
    slots_held += double(seq.kv_slots_total);
  }
  if (num_tokens == 0) return cost;  // an empty step: nothing runs, no overhead
  const double head_dim = config_.head_dim(), group = config_.group_size();
  cost.linear_flops = 2 * params_per_layer_ * config_.num_layers * num_tokens + 2 * classifier_params_ * num_sampled;
  cost.attention_flops = 4 * head_dim * group * std::max(visible_keys, 0.0);
  const double weight_elem = double(device_.weight_bytes_per_param);
  cost.weight_bytes = weight_elem * (params_per_layer_ * config_.num_layers + (num_sampled > 0 ? classifier_params_ : 0));
  cost.kv_read_bytes = kv_slot_bytes_ * slots_held;
  cost.kv_write_bytes = kv_slot_bytes_ * num_lists_ * num_tokens;
  cost.compute_seconds = cost.linear_flops / device_.peak_flops + cost.attention_flops / device_.attention_rate();
  cost.memory_seconds = cost.bytes() / device_.memory_bandwidth;
  cost.seconds = (device_.overlap ? std::max(cost.compute_seconds, cost.memory_seconds)
                                  : cost.compute_seconds + cost.memory_seconds) +
                 device_.step_overhead_s;
  return cost;
}

}  // namespace prunekv::sim
