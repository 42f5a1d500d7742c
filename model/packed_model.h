#pragma once
// The model's weight matrices repacked for the GEMM micro-kernel (model/gemm.h), with the
// products that share an input fused: wq|wk|wv and w1|w3 are one PackedWeights each, so a layer
// runs four weight GEMMs instead of seven. Built once per Model (by the first Transformer over
// it) and shared by every later one; the Model's own [out][in] views stay as loaded.
#include <memory>
#include <vector>

#include "model/gemm.h"
#include "model/model.h"

namespace prunekv {

struct PackedLayer {
  PackedWeights qkv;  // parts wq [dim], wk [kv_dim], wv [kv_dim]; in = dim
  PackedWeights wo;   // [dim]; in = dim
  PackedWeights w13;  // parts w1 (gate) [hidden], w3 (up) [hidden]; in = dim
  PackedWeights w2;   // [dim]; in = hidden
};

struct PackedModel {
  std::vector<PackedLayer> layers;
  PackedWeights classifier;  // [vocab]; in = dim
};

// The packed weights of `model`, packing them on the first call (thread-safe) and caching them
// in model.packed.
std::shared_ptr<const PackedModel> packed_weights(const Model& model);

}  // namespace prunekv
