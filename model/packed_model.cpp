#include "model/packed_model.h"

#include <algorithm>
#include <mutex>
#include <span>

#include "common/log.h"

namespace prunekv {

namespace {

ProductWeights product(std::span<const QuantPart> parts, size_t in) {
  ProductWeights weights;
  auto all_of_type = [&](GgmlType type) {
    return std::all_of(parts.begin(), parts.end(), [&](const QuantPart& p) { return p.w.type == type; });
  };
  if (all_of_type(GgmlType::kF32)) {
    std::vector<GemmPart> gemm_parts;
    for (const QuantPart& p : parts) gemm_parts.push_back({p.w.f32(), p.out});
    weights.packed = PackedWeights(gemm_parts, in);
  } else if (all_of_type(GgmlType::kF16)) {
    std::vector<GemmHalfPart> gemm_parts;
    for (const QuantPart& p : parts) gemm_parts.push_back({static_cast<const uint16_t*>(p.w.data), p.out});
    weights.packed = PackedWeights(gemm_parts, in);
    weights.quant = QuantWeights(parts, in);
  } else {
    weights.quant = QuantWeights(parts, in);
  }
  return weights;
}

std::shared_ptr<const PackedModel> pack(const Model& model) {
  const ModelConfig& c = model.config;
  auto packed = std::make_shared<PackedModel>();
  packed->layers.reserve(model.layers.size());
  for (const LayerWeights& w : model.layers) {
    const QuantPart qkv[] = {{w.wq, c.dim}, {w.wk, c.kv_dim()}, {w.wv, c.kv_dim()}};
    const QuantPart wo[] = {{w.wo, c.dim}};
    const QuantPart w13[] = {{w.w1, c.hidden_dim}, {w.w3, c.hidden_dim}};
    const QuantPart w2[] = {{w.w2, c.dim}};
    packed->layers.push_back({product(qkv, c.dim), product(wo, c.dim), product(w13, c.dim), product(w2, c.hidden_dim)});
  }
  const QuantPart classifier[] = {{model.classifier, c.vocab_size}};
  packed->classifier = product(classifier, c.dim);
  return packed;
}

}  // namespace

std::shared_ptr<const PackedModel> packed_weights(const Model& model) {
  static std::mutex mutex;  // one lock for every Model: packing is rare and short
  const std::lock_guard lock(mutex);
  if (!model.packed) {
    model.packed = pack(model);
    log::get("model")->debug("packed the weights of {} for the GEMM kernel", model.config.name);
  }
  return model.packed;
}

}  // namespace prunekv
