#include "tests/testing/random_model.h"

#include <cmath>
#include <random>
#include <vector>

namespace prunekv::testing {

std::unique_ptr<Model> make_random_model(const RandomModelShape& shape, uint64_t seed) {
  auto model = std::make_unique<Model>();
  ModelConfig& c = model->config;
  c.name = "random";
  c.dim = shape.dim;
  c.hidden_dim = shape.hidden_dim;
  c.num_layers = shape.num_layers;
  c.num_heads = shape.num_heads;
  c.num_kv_heads = shape.num_kv_heads;
  c.vocab_size = shape.vocab_size;
  c.context_length = shape.context_length;
  c.rope_layout = shape.rope_layout;

  const size_t dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim, vocab = c.vocab_size;
  const size_t per_layer = 2 * dim + dim * dim * 2 + kv_dim * dim * 2 + hidden * dim * 3;
  const size_t total = vocab * dim * (shape.tied_classifier ? 1 : 2) + dim + per_layer * c.num_layers;
  auto buffer = std::make_shared<std::vector<float>>(total);

  std::mt19937_64 rng(seed);
  float* next = buffer->data();
  // Hands out the next `count` floats of the buffer, filled uniformly in [-amplitude, amplitude]
  // around `center`.
  auto take = [&](size_t count, float center, float amplitude) {
    std::uniform_real_distribution<float> dist(center - amplitude, center + amplitude);
    float* start = next;
    for (size_t i = 0; i < count; ++i) start[i] = dist(rng);
    next += count;
    return start;
  };
  const auto fan = [](size_t in) { return 1.0f / std::sqrt(static_cast<float>(in)); };

  model->token_embedding = take(vocab * dim, 0.0f, 1.0f);
  for (uint32_t l = 0; l < c.num_layers; ++l) {
    LayerWeights w;
    w.attn_norm = take(dim, 1.0f, 0.2f);
    // Larger Q/K weights give peaked attention rows, which exercise the softmax harder.
    w.wq = take(dim * dim, 0.0f, 2.0f * fan(dim));
    w.wk = take(kv_dim * dim, 0.0f, 2.0f * fan(dim));
    w.wv = take(kv_dim * dim, 0.0f, fan(dim));
    w.wo = take(dim * dim, 0.0f, fan(dim));
    w.ffn_norm = take(dim, 1.0f, 0.2f);
    w.w1 = take(hidden * dim, 0.0f, fan(dim));
    w.w2 = take(dim * hidden, 0.0f, fan(hidden));
    w.w3 = take(hidden * dim, 0.0f, fan(dim));
    model->layers.push_back(w);
  }
  model->final_norm = take(dim, 1.0f, 0.2f);
  model->classifier = shape.tied_classifier ? model->token_embedding : take(vocab * dim, 0.0f, fan(dim));
  model->stop_tokens = {model->eos_id};
  model->storage.push_back(buffer);
  return model;
}

}  // namespace prunekv::testing
