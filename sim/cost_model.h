#pragma once
// A roofline model of one engine step, for the simulator: the forward pass is replaced by
//   compute = linear_flops / peak_flops + attention_flops / attention_rate
//   memory  = bytes / memory_bandwidth
//   seconds = max(compute, memory) + step_overhead_s        (overlap: GPUs)
//           = compute + memory + step_overhead_s            (no overlap: the CPU engine)
//
// Precisely, for a model with L layers, H query heads, H_kv KV heads, G = H / H_kv, head dim d,
// residual width D, SwiGLU width F, vocabulary V, KV slot size s = 2 * d * kv_bytes (K and V of
// one token in one (layer, KV head) list), weight element size w, and a step of T tokens over
// sequences i with n_i tokens each, S_i KV slots summed over all L * H_kv lists (after the
// step's slots were appended, after any pruning) and sampled_i in {0, 1}:
//   params per layer    P = D*D (wq) + 2*(H_kv*d)*D (wk, wv) + D*D (wo) + 3*D*F (w1, w2, w3)
//   linear flops        = 2 * P * L * T + 2 * V * D * (number of sampled sequences)
//   attention flops     = sum_i 4 * d * G * (n_i * S_i - L*H_kv * n_i*(n_i-1)/2)
//       (per query head and visible key: 2d for q.k and 2d for p*v; a chunk's token j of n sees
//        the list's slots up to itself, causal, so the chunk sees n*S_list - n(n-1)/2 keys)
//   weight bytes        = w * (P * L + (any sampled ? V * D : 0))   (read once per step)
//   KV read bytes       = s * sum_i S_i      (each held slot read once per step per sequence)
//   KV written bytes    = s * L*H_kv * T
// Not modelled: norms, RoPE, softmax, activations traffic, embedding lookups (all O(T*D)).
#include <cstddef>
#include <span>

#include "memory/kv_layout.h"
#include "sim/device_profile.h"
#include "model/model_config.h"

namespace prunekv::sim {

// One sequence's share of a step.
struct SequenceWork {
  size_t num_tokens = 0;      // n_i: tokens computed this step (a prefill chunk or 1 decode token)
  size_t kv_slots_total = 0;  // S_i: slots held over all lists, this step's included
  bool sample = false;        // computes logits for its last token
};

struct StepCost {
  double linear_flops = 0;
  double attention_flops = 0;
  double weight_bytes = 0;
  double kv_read_bytes = 0;
  double kv_write_bytes = 0;
  double compute_seconds = 0;  // linear at peak_flops + attention at the attention rate
  double memory_seconds = 0;   // bytes / bandwidth
  double seconds = 0;          // max (overlap) or sum of the two, + overhead

  double flops() const { return linear_flops + attention_flops; }
  double bytes() const { return weight_bytes + kv_read_bytes + kv_write_bytes; }
};

class CostModel {
 public:
  // Throws ConfigError when the config or profile is invalid.
  CostModel(const ModelConfig& config, const DeviceProfile& device, KvDtype kv_dtype);

  StepCost step_cost(std::span<const SequenceWork> seqs) const;

  double params_per_layer() const { return params_per_layer_; }
  double classifier_params() const { return classifier_params_; }
  // Weights of all layers plus the classifier, in bytes at the device's weight element size.
  double weight_bytes_total() const;
  const DeviceProfile& device() const { return device_; }

 private:
  ModelConfig config_;
  DeviceProfile device_;
  double params_per_layer_ = 0;
  double classifier_params_ = 0;
  double kv_slot_bytes_ = 0;
  double num_lists_ = 0;
};

}  // namespace prunekv::sim
