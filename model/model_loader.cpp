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

}  // namespace

std::unique_ptr<Model> load_model(std::string_view spec, const LoadOptions& options) {
  std::unique_ptr<Model> model;
  if (spec.starts_with(kSyntheticPrefix)) {
    model = detail::make_synthetic_model(spec.substr(kSyntheticPrefix.size()), options);
  } else {
    const std::string path(spec);
    model = has_gguf_magic(path) ? detail::load_gguf_model(path, options) : detail::load_llama2c_model(path, options);
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
      "({}), {}",
      c.name, model->file_type, c.dim, c.hidden_dim, c.num_layers, c.num_heads, c.num_kv_heads, c.vocab_size,
      c.context_length, static_cast<double>(c.num_weight_params()) / 1e6,
      format_bytes(c.num_weight_params() * sizeof(float)),
      model->tokenizer ? fmt::format("tokenizer {} pieces", model->tokenizer->vocab_size()) : "no tokenizer");
  return model;
}

}  // namespace prunekv
