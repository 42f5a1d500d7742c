#pragma once
// Small LLaMA models with seeded random weights of any shape, for comparing the optimised
// forward against the scalar reference (GQA, odd dimensions, either RoPE layout).
#include <cstdint>
#include <memory>

#include "model/model.h"

namespace prunekv::testing {

struct RandomModelShape {
  uint32_t dim = 32;
  uint32_t hidden_dim = 48;
  uint32_t num_layers = 2;
  uint32_t num_heads = 4;
  uint32_t num_kv_heads = 2;
  uint32_t vocab_size = 64;
  uint32_t context_length = 256;
  RopeLayout rope_layout = RopeLayout::kAdjacentPairs;
  bool tied_classifier = true;
};

// Weights ~ U(-a, a) with a = 1/sqrt(fan_in) so activations stay O(1) through the layers, and
// norm weights near 1. Same seed, same model.
std::unique_ptr<Model> make_random_model(const RandomModelShape& shape, uint64_t seed);

}  // namespace prunekv::testing
