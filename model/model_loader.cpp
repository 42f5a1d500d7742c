// load_model(): picks the loader from the spec, applies the common options, logs one line.
#include <cstring>
#include <fmt/format.h>
#include <fstream>

#include "common/byte_size.h"
#include "common/error.h"
#include "common/log.h"
#include "model/gguf_loader.h"
#include "model/llama2c_loader.h"
#include "model/model.h"
#include "model/synthetic.h"

namespace prunekv {
namespace {

constexpr std::string_view kSyntheticPrefix = "synthetic:";

bool has_gguf_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(fmt::format("{}: cannot open model file", path));
  char magic[4] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

// Without the magic a file is read as a llama2.c checkpoint (which has none); its errors say
// so, and a .gguf file is not guessed at all.
std::unique_ptr<Model> load_file_without_gguf_magic(const std::string& path, const LoadOptions& options) {
  constexpr std::string_view kNotGguf = "not a GGUF file (its first 4 bytes are not \"GGUF\")";
  if (path.ends_with(".gguf")) throw FormatError(fmt::format("{}: {}", path, kNotGguf));
  try {
    return detail::load_llama2c_model(path, options);
  } catch (const FormatError& e) {
    throw FormatError(fmt::format("{} (read as a llama2.c checkpoint: {})", e.what(), kNotGguf));
  }
}

}  // namespace

std::string Model::weight_summary() const {
  const ModelConfig& c = config;
  const size_t dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim, vocab = c.vocab_size;
  // Bytes per type, in the order types first appear; the norm vectors count as F32.
  std::vector<std::pair<GgmlType, size_t>> bytes;
  auto add = [&](GgmlType type, size_t n) {
    for (auto& [t, b] : bytes)
      if (t == type) return void(b += n);
    bytes.emplace_back(type, n);
  };
  auto add_matrix = [&](const WeightView& w, size_t rows, size_t cols) { add(w.type, rows * ggml_row_bytes(w.type, cols)); };
  add_matrix(token_embedding, vocab, dim);
  for (const LayerWeights& w : layers) {
    add_matrix(w.wq, dim, dim);
    add_matrix(w.wk, kv_dim, dim);
    add_matrix(w.wv, kv_dim, dim);
    add_matrix(w.wo, dim, dim);
    add_matrix(w.w1, hidden, dim);
    add_matrix(w.w2, dim, hidden);
    add_matrix(w.w3, hidden, dim);
    add(GgmlType::kF32, 2 * dim * sizeof(float));
  }
  add(GgmlType::kF32, dim * sizeof(float));
  if (!(classifier == token_embedding)) add_matrix(classifier, vocab, dim);
  std::string out;
  size_t total = 0;
  for (const auto& [type, n] : bytes) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", ggml_type_name(type), format_bytes(n));
    total += n;
  }
  return fmt::format("{} ({} in all)", out, format_bytes(total));
}

std::unique_ptr<Model> load_model(std::string_view spec, const LoadOptions& options) {
  std::unique_ptr<Model> model;
  if (spec.starts_with(kSyntheticPrefix)) {
    model = detail::make_synthetic_model(spec.substr(kSyntheticPrefix.size()), options);
  } else {
    const std::string path(spec);
    model = has_gguf_magic(path) ? detail::load_gguf_model(path, options) : load_file_without_gguf_magic(path, options);
  }
  ModelConfig& c = model->config;
  if (options.context_length != 0 && options.context_length != c.context_length) {
    if (!spec.starts_with(kSyntheticPrefix) && options.context_length > c.context_length)
      log::get("model")->warn("{}: context length {} exceeds the {} positions the model was trained for", c.name,
                              options.context_length, c.context_length);
    c.context_length = options.context_length;
    c.validate(std::string(spec));
  }
  log::get("model")->info(
      "loaded {} ({}): dim {}, hidden {}, {} layers, {} heads / {} kv heads, vocab {}, ctx {}, {:.2f} M params "
      "weights {}, {}",
      c.name, model->file_type, c.dim, c.hidden_dim, c.num_layers, c.num_heads, c.num_kv_heads, c.vocab_size,
      c.context_length, static_cast<double>(c.num_weight_params()) / 1e6,
      model->weight_summary(),
      model->tokenizer ? fmt::format("tokenizer {} pieces", model->tokenizer->vocab_size()) : "no tokenizer");
  return model;
}

}  // namespace prunekv
