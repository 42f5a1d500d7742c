#pragma once
// The hyper-parameters of a LLaMA-architecture decoder, whatever file they came from.
#include <cstdint>
#include <string>

#include "memory/kv_layout.h"

namespace prunekv {

// How RoPE pairs dimensions: Meta/llama2.c and llama.cpp's "norm" rotate (x[2i], x[2i+1]);
// HF/NeoX rotate (x[i], x[i + head_dim/2]).
enum class RopeLayout : uint8_t { kAdjacentPairs, kHalfSplit };

struct ModelConfig {
  std::string name;             // "stories260K", "synthetic:stories15M", a file's general.name
  uint32_t dim = 0;             // residual width
  uint32_t hidden_dim = 0;      // SwiGLU width
  uint32_t num_layers = 0;
  uint32_t num_heads = 0;       // query heads
  uint32_t num_kv_heads = 0;    // K/V heads (GQA when < num_heads)
  uint32_t vocab_size = 0;
  uint32_t context_length = 0;  // positions the model was trained for
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  RopeLayout rope_layout = RopeLayout::kAdjacentPairs;
  bool tied_classifier = true;  // the classifier is the token embedding (counted once)

  uint32_t head_dim() const { return dim / num_heads; }
  uint32_t kv_dim() const { return num_kv_heads * head_dim(); }
  uint32_t group_size() const { return num_heads / num_kv_heads; }  // query heads per KV head
  // The paged KV geometry this model needs: one list per (layer, KV head) of head_dim slots.
  KvLayout kv_layout(uint32_t block_size, KvDtype dtype = KvDtype::kF32) const {
    return KvLayout{num_layers, num_kv_heads, head_dim(), block_size, dtype};
  }

  // Weight multiply-adds x2 per token, the vocabulary projection included (attention excluded).
  double weight_flops_per_token() const;
  size_t num_weight_params() const;

  // Throws FormatError naming `source`, the field, the expected and the found value.
  void validate(const std::string& source) const;
};

}  // namespace prunekv
