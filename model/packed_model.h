#pragma once
// The model's weight matrices arranged for the forward step's products, with the products that
// share an input fused: wq|wk|wv and w1|w3 are one product each, so a layer runs four weight
// GEMMs instead of seven. A product whose parts are all F32 is repacked into the GEMM
// micro-kernel's panels (model/gemm.h: the exact path of llama2.c and F32 GGUF files), one whose
// parts are all F16 into the same panels of halves (widened in the kernel: at 16 tokens,
// stories110M, dequantizing F16 tiles into fp32 panels cost as much as the GEMM itself); the
// mapped file's pages of packed weights are then released, so the model is resident once. Any
// other product stays in the file's types, read in place (model/quant_matmul.h). Built once per Model
// (by the first Transformer over it) and shared by every later one; the Model's own [out][in]
// views stay as loaded.
#include <memory>
#include <vector>

#include "model/gemm.h"
#include "model/model.h"
#include "model/quant_matmul.h"

namespace prunekv {

// One product's weights: exactly one of the two is set.
struct ProductWeights {
  PackedWeights packed;  // every part F32, or every part F16 (half panels)
  QuantWeights quant;    // otherwise: views in the file's types
  bool is_packed() const { return packed.num_panels() > 0; }
};

struct PackedLayer {
  ProductWeights qkv;  // parts wq [dim], wk [kv_dim], wv [kv_dim]; in = dim
  ProductWeights wo;   // [dim]; in = dim
  ProductWeights w13;  // parts w1 (gate) [hidden], w3 (up) [hidden]; in = dim
  ProductWeights w2;   // [dim]; in = hidden
};

struct PackedModel {
  std::vector<PackedLayer> layers;
  ProductWeights classifier;  // [vocab]; in = dim
};

// The packed weights of `model`, packing them on the first call (thread-safe) and caching them
// in model.packed.
std::shared_ptr<const PackedModel> packed_weights(const Model& model);

}  // namespace prunekv
