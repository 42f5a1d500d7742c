#include "model/packed_model.h"

#include <algorithm>
#include <mutex>
#include <span>

#include "common/log.h"
#include "model/mapped_file.h"

namespace prunekv {

namespace {

// `file`: the map the views point into (null for weights in memory), whose pages of the weights
// copied into panels are released.
ProductWeights product(std::span<const QuantPart> parts, size_t in, const MappedFile* file) {
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
  } else {
    weights.quant = QuantWeights(parts, in);
    return weights;
  }
  // The panels hold these weights now: the file's copy need not stay resident beside them.
  if (file != nullptr)
    for (const QuantPart& p : parts) file->release_pages(p.w.data, p.out * ggml_row_bytes(p.w.type, in));
  return weights;
}

std::shared_ptr<const PackedModel> pack(const Model& model) {
  const ModelConfig& c = model.config;
  auto packed = std::make_shared<PackedModel>();
  const MappedFile* file = model.mapped_file.get();
  packed->layers.reserve(model.layers.size());
  for (const LayerWeights& w : model.layers) {
    const QuantPart qkv[] = {{w.wq, c.dim}, {w.wk, c.kv_dim()}, {w.wv, c.kv_dim()}};
    const QuantPart wo[] = {{w.wo, c.dim}};
    const QuantPart w13[] = {{w.w1, c.hidden_dim}, {w.w3, c.hidden_dim}};
    const QuantPart w2[] = {{w.w2, c.dim}};
    packed->layers.push_back({product(qkv, c.dim, file), product(wo, c.dim, file), product(w13, c.dim, file),
                              product(w2, c.hidden_dim, file)});
  }
  const QuantPart classifier[] = {{model.classifier, c.vocab_size}};
  packed->classifier = product(classifier, c.dim, file);
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
