#include "model/packed_model.h"

#include <mutex>

#include "common/log.h"

namespace prunekv {

namespace {

std::shared_ptr<const PackedModel> pack(const Model& model) {
  const ModelConfig& c = model.config;
  auto packed = std::make_shared<PackedModel>();
  packed->layers.reserve(model.layers.size());
  for (const LayerWeights& w : model.layers) {
    const GemmPart qkv[] = {{w.wq, c.dim}, {w.wk, c.kv_dim()}, {w.wv, c.kv_dim()}};
    const GemmPart wo[] = {{w.wo, c.dim}};
    const GemmPart w13[] = {{w.w1, c.hidden_dim}, {w.w3, c.hidden_dim}};
    const GemmPart w2[] = {{w.w2, c.dim}};
    packed->layers.push_back({PackedWeights(qkv, c.dim), PackedWeights(wo, c.dim), PackedWeights(w13, c.dim),
                              PackedWeights(w2, c.hidden_dim)});
  }
  const GemmPart classifier[] = {{model.classifier, c.vocab_size}};
  packed->classifier = PackedWeights(classifier, c.dim);
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
