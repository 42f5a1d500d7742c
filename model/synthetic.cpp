#include "model/synthetic.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/check.h"
#include "common/error.h"

namespace prunekv {
namespace detail {
namespace {

struct SyntheticShape {
  const char* name;
  uint32_t dim, hidden_dim, num_layers, num_heads, num_kv_heads, vocab_size, context_length;
};

// The stories* shapes are karpathy's tinyllamas checkpoints (llama2.c README); gqa-small is a
// GQA shape of our own with 4 query heads per KV head.
constexpr std::array<SyntheticShape, 5> kShapes{{
    {"stories15M", 288, 768, 6, 6, 6, 32000, 256},
    {"stories42M", 512, 1376, 8, 8, 8, 32000, 1024},
    {"stories110M", 768, 2048, 12, 12, 12, 32000, 1024},
    {"gqa-small", 256, 704, 4, 8, 2, 4096, 2048},
    {"stories260K", 64, 172, 5, 8, 4, 512, 512},
}};

// splitmix64 finaliser: a counter-based generator, so any element can be computed independently
// (parallel fill, same values whatever the thread count).
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Fills [begin, begin + count) with uniform values in [-scale, scale); element i of the whole
// buffer always gets the same value for a given seed.
void fill_uniform(float* buffer, uint64_t begin, uint64_t count, float scale, uint64_t seed) {
  const uint64_t key = mix(seed);
  tbb::parallel_for(tbb::blocked_range<uint64_t>(begin, begin + count, 1u << 16),
                    [&](const tbb::blocked_range<uint64_t>& range) noexcept {
                      for (uint64_t i = range.begin(); i != range.end(); ++i) {
                        const double unit = static_cast<double>(mix(key ^ i) >> 40) * 0x1.0p-24;  // [0, 1)
                        buffer[i] = static_cast<float>((2.0 * unit - 1.0) * scale);
                      }
                    });
}

}  // namespace

std::unique_ptr<Model> make_synthetic_model(std::string_view name, const LoadOptions& options) {
  const SyntheticShape* shape = nullptr;
  for (const auto& s : kShapes)
    if (name == s.name) shape = &s;
  if (shape == nullptr)
    throw ConfigError(fmt::format("unknown synthetic model '{}': expected one of synthetic:{}", name,
                                  fmt::join(synthetic_model_names(), ", synthetic:")));
  auto model = std::make_unique<Model>();
  ModelConfig& c = model->config;
  c.name = fmt::format("synthetic:{}", shape->name);
  c.dim = shape->dim;
  c.hidden_dim = shape->hidden_dim;
  c.num_layers = shape->num_layers;
  c.num_heads = shape->num_heads;
  c.num_kv_heads = shape->num_kv_heads;
  c.vocab_size = shape->vocab_size;
  c.context_length = shape->context_length;
  c.validate(c.name);

  // One buffer in llama2.c order; uninitialised on purpose (every float is written below).
  const uint64_t dim = c.dim, hidden = c.hidden_dim, kv_dim = c.kv_dim(), vocab = c.vocab_size;
  const uint64_t num_floats = c.num_weight_params();
  std::shared_ptr<float[]> buffer(new float[num_floats]);
  float* const base = buffer.get();
  uint64_t offset = 0;
  // Matrices get variance 1/in (uniform in +-sqrt(3/in)) so activations keep their scale; norm
  // weights are 1.
  auto matrix = [&](uint64_t rows, uint64_t cols) {
    fill_uniform(base, offset, rows * cols, static_cast<float>(std::sqrt(3.0 / static_cast<double>(cols))),
                 options.seed);
    offset += rows * cols;
    return base + offset - rows * cols;
  };
  auto ones = [&](uint64_t n) {
    std::fill(base + offset, base + offset + n, 1.0f);
    offset += n;
    return base + offset - n;
  };
  model->token_embedding = base;
  fill_uniform(base, 0, vocab * dim, 1.0f, options.seed);
  offset = vocab * dim;
  model->layers.resize(c.num_layers);
  for (LayerWeights& layer : model->layers) {
    layer.attn_norm = ones(dim);
    layer.wq = matrix(dim, dim);
    layer.wk = matrix(kv_dim, dim);
    layer.wv = matrix(kv_dim, dim);
    layer.wo = matrix(dim, dim);
    layer.ffn_norm = ones(dim);
    layer.w1 = matrix(hidden, dim);
    layer.w2 = matrix(dim, hidden);
    layer.w3 = matrix(hidden, dim);
  }
  model->final_norm = ones(dim);
  model->classifier = model->token_embedding;
  PKV_CHECK(offset == num_floats, "synthetic layout wrote {} of {} floats", offset, num_floats);

  if (!options.tokenizer_path.empty())
    model->tokenizer = Tokenizer::from_llama2c_file(options.tokenizer_path, c.vocab_size);
  model->bos_id = 1;
  model->eos_id = 2;
  model->stop_tokens = {model->eos_id, model->bos_id};
  model->file_type = "synthetic fp32";
  model->storage.push_back(std::shared_ptr<const void>(buffer, buffer.get()));
  return model;
}

}  // namespace detail

std::vector<std::string> synthetic_model_names() {
  std::vector<std::string> names;
  for (const auto& s : detail::kShapes) names.emplace_back(s.name);
  return names;
}

}  // namespace prunekv
