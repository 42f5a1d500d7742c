#include "model/llama2c_loader.h"

#include <array>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "common/error.h"
#include "common/log.h"
#include "model/mapped_file.h"

namespace prunekv::detail {
namespace {

constexpr size_t kHeaderInts = 7;
constexpr size_t kHeaderBytes = kHeaderInts * sizeof(int32_t);
// Newer llama2.c exports (export.py version 1/2) start with this magic instead of a header.
constexpr uint32_t kLlama2cV1Magic = 0x616b3432;  // "ak42"

uint32_t positive_field(const std::string& path, const char* field, int32_t value) {
  if (value <= 0) throw FormatError(fmt::format("{}: header field {} = {}, expected a positive value", path, field, value));
  return static_cast<uint32_t>(value);
}

}  // namespace

std::optional<Tokenizer> find_llama2c_tokenizer(const std::string& model_path, uint32_t vocab_size,
                                                const LoadOptions& options) {
  if (!options.tokenizer_path.empty()) return Tokenizer::from_llama2c_file(options.tokenizer_path, vocab_size);
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(model_path).parent_path();
  for (const std::string& name : {fmt::format("tok{}.bin", vocab_size), std::string("tokenizer.bin")}) {
    const fs::path candidate = dir / name;
    std::error_code ec;
    if (!fs::is_regular_file(candidate, ec)) continue;
    try {
      if (Tokenizer::llama2c_file_vocab_size(candidate.string()) == vocab_size)
        return Tokenizer::from_llama2c_file(candidate.string(), vocab_size);
    } catch (const FormatError& e) {
      log::get("model")->warn("skipping tokenizer beside the model: {}", e.what());
    }
  }
  log::get("model")->info("{}: no tokenizer with {} entries found beside the model (pass one explicitly)",
                          model_path, vocab_size);
  return std::nullopt;
}

// Mirrors run.c read_checkpoint() + memory_map_weights(), with every size checked first.
std::unique_ptr<Model> load_llama2c_model(const std::string& path, const LoadOptions& options) {
  auto file = MappedFile::open(path);
  if (file->size() < kHeaderBytes)
    throw FormatError(fmt::format("{}: truncated llama2.c header: expected at least {} bytes, found {}", path,
                                  kHeaderBytes, file->size()));
  std::array<int32_t, kHeaderInts> header{};
  std::memcpy(header.data(), file->data(), kHeaderBytes);
  if (static_cast<uint32_t>(header[0]) == kLlama2cV1Magic)
    throw FormatError(fmt::format("{}: llama2.c export version 1/2 (magic \"ak42\") is not supported; expected the "
                                  "legacy version-0 checkpoint (run.c's format) or GGUF",
                                  path));

  auto model = std::make_unique<Model>();
  ModelConfig& c = model->config;
  c.name = std::filesystem::path(path).stem().string();
  c.dim = positive_field(path, "dim", header[0]);
  c.hidden_dim = positive_field(path, "hidden_dim", header[1]);
  c.num_layers = positive_field(path, "n_layers", header[2]);
  c.num_heads = positive_field(path, "n_heads", header[3]);
  c.num_kv_heads = positive_field(path, "n_kv_heads", header[4]);
  // A negative vocab_size flags a separate classifier (run.c: shared_weights = vocab_size > 0).
  if (header[5] == 0 || header[5] == INT32_MIN)
    throw FormatError(fmt::format("{}: header field vocab_size = {}, expected a non-zero value", path, header[5]));
  c.tied_classifier = header[5] > 0;
  c.vocab_size = static_cast<uint32_t>(header[5] > 0 ? header[5] : -header[5]);
  c.context_length = positive_field(path, "seq_len", header[6]);
  c.rope_theta = 10000.0f;
  c.norm_eps = 1e-5f;
  c.rope_layout = RopeLayout::kAdjacentPairs;
  c.validate(path);
  if (c.vocab_size < 3)  // run.c's BOS = 1 and EOS = 2 must exist
    throw FormatError(fmt::format("{}: header field vocab_size = {}, expected at least 3", path, c.vocab_size));

  // validate() bounds every field, so these products fit easily in 64 bits.
  const uint64_t dim = c.dim, hidden = c.hidden_dim, layers = c.num_layers, kv_dim = c.kv_dim();
  const uint64_t vocab = c.vocab_size, head_size = c.head_dim(), seq_len = c.context_length;
  const uint64_t rope_floats = seq_len * head_size;  // legacy freq_cis_real + freq_cis_imag
  const uint64_t num_floats = c.num_weight_params() + rope_floats;
  const uint64_t expected_bytes = kHeaderBytes + num_floats * sizeof(float);
  if (file->size() != expected_bytes)
    throw FormatError(fmt::format(
        "{}: file size {} bytes does not match the header (dim {}, hidden {}, layers {}, heads {}, kv heads {}, "
        "vocab {}{}, seq_len {}): expected {} bytes{}",
        path, file->size(), dim, hidden, layers, c.num_heads, c.num_kv_heads, vocab,
        c.tied_classifier ? "" : " + classifier", seq_len, expected_bytes,
        file->size() < expected_bytes ? " (truncated?)" : ""));

  // The mapping is page-aligned and the header is 28 bytes, so every tensor is float-aligned.
  const float* cursor = reinterpret_cast<const float*>(file->data() + kHeaderBytes);
  auto take = [&](uint64_t count) {
    const float* begin = cursor;
    cursor += count;
    return begin;
  };
  model->token_embedding = take(vocab * dim);
  model->layers.resize(c.num_layers);
  // Tensors are stored layer-major per kind ([L][rows][cols]): take each kind for all layers.
  auto per_layer = [&]<class View>(View LayerWeights::*member, uint64_t count) {
    const float* base = take(layers * count);
    for (uint64_t l = 0; l < layers; ++l) model->layers[l].*member = View(base + l * count);
  };
  per_layer(&LayerWeights::attn_norm, dim);
  per_layer(&LayerWeights::wq, dim * dim);
  per_layer(&LayerWeights::wk, kv_dim * dim);
  per_layer(&LayerWeights::wv, kv_dim * dim);
  per_layer(&LayerWeights::wo, dim * dim);
  per_layer(&LayerWeights::ffn_norm, dim);
  per_layer(&LayerWeights::w1, hidden * dim);
  per_layer(&LayerWeights::w2, dim * hidden);
  per_layer(&LayerWeights::w3, hidden * dim);
  model->final_norm = take(dim);
  take(rope_floats);  // freq_cis_real/imag: unused, RoPE is computed on the fly
  model->classifier = c.tied_classifier ? model->token_embedding : take(vocab * dim);

  model->tokenizer = find_llama2c_tokenizer(path, c.vocab_size, options);
  model->bos_id = 1;  // run.c hard-codes BOS = 1, EOS = 2
  model->eos_id = 2;
  model->stop_tokens = {model->eos_id, model->bos_id};
  model->file_type = "llama2.c fp32";
  model->mapped_file = file;
  model->storage.push_back(file);
  return model;
}

}  // namespace prunekv::detail
