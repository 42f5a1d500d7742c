#include "model/gguf_loader.h"

#include <charconv>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/log.h"
#include "model/dequantize.h"
#include "model/gguf_reader.h"
#include "model/llama2c_loader.h"

namespace prunekv::detail {
namespace {

// A small fp32 vector (a norm weight) of an F16/BF16 tensor: converted into an owned copy.
void convert_to_f32(const GgufTensorInfo& t, float* out) {
  dequantize_row(t.type, t.data, out, t.num_elements());
}

std::string shape_string(const std::vector<uint64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

class GgufModelBuilder {
 public:
  GgufModelBuilder(const GgufReader& gguf, Model& model) : gguf_(gguf), model_(model) {}

  uint32_t required_u32(const std::string& key) const {
    const auto value = gguf_.get_uint(key);
    if (!value) throw FormatError(fmt::format("{}: missing metadata {}", gguf_.path(), key));
    return checked_u32(key, *value);
  }
  uint32_t optional_u32(const std::string& key, uint32_t fallback) const {
    const auto value = gguf_.get_uint(key);
    return value ? checked_u32(key, *value) : fallback;
  }

  // The tensor `name`, checked against the expected shape and a supported type.
  const GgufTensorInfo& find(const std::string& name, const std::vector<uint64_t>& expected_shape) const {
    const GgufTensorInfo* t = gguf_.find_tensor(name);
    if (t == nullptr)
      throw FormatError(fmt::format("{}: missing tensor {} (expected shape {})", gguf_.path(), name,
                                    shape_string(expected_shape)));
    if (t->shape != expected_shape)
      throw FormatError(fmt::format("{}: tensor {} has shape {}, expected {}", gguf_.path(), name,
                                    shape_string(t->shape), shape_string(expected_shape)));
    if (!is_supported_weight_type(t->type))
      throw FormatError(fmt::format("{}: tensor {} has type {}, expected one of {}", gguf_.path(), name,
                                    ggml_type_name(t->type), supported_weight_types()));
    return *t;
  }

  // A weight matrix in the file's own type: a view into the memory map, nothing converted.
  WeightView matrix(const std::string& name, std::vector<uint64_t> expected_shape) {
    const GgufTensorInfo& t = find(name, expected_shape);
    const bool aligned = reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0;
    if (t.type == GgmlType::kF32 && !aligned) return WeightView(owned_f32(t));  // alignment < 4
    return WeightView(t.type, t.data);
  }

  // A norm vector as fp32: a view for F32, else a small converted copy.
  const float* vector(const std::string& name, uint64_t size) {
    const GgufTensorInfo& t = find(name, {size});
    if (t.type == GgmlType::kF32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
      return reinterpret_cast<const float*>(t.data);
    if (t.type != GgmlType::kF32 && t.type != GgmlType::kF16 && t.type != GgmlType::kBF16)
      throw FormatError(fmt::format("{}: tensor {} has type {}, expected F32, F16 or BF16 for a norm weight",
                                    gguf_.path(), name, ggml_type_name(t.type)));
    return owned_f32(t);
  }

 private:
  const float* owned_f32(const GgufTensorInfo& t) {
    auto buffer = std::make_shared<std::vector<float>>(t.num_elements());
    convert_to_f32(t, buffer->data());
    model_.storage.push_back(buffer);
    return buffer->data();
  }

  uint32_t checked_u32(const std::string& key, uint64_t value) const {
    if (value > UINT32_MAX)
      throw FormatError(fmt::format("{}: metadata {} = {}, expected at most {}", gguf_.path(), key, value, UINT32_MAX));
    return static_cast<uint32_t>(value);
  }

  const GgufReader& gguf_;
  Model& model_;
};

std::optional<Tokenizer> read_gguf_tokenizer(const GgufReader& gguf, Model& model) {
  const std::string& path = gguf.path();
  auto tokens = gguf.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) {
    log::get("model")->warn("{}: no tokenizer.ggml.tokens; the model has no tokenizer", path);
    return std::nullopt;
  }
  const std::string kind = gguf.get_string("tokenizer.ggml.model").value_or("llama");
  if (kind != "llama") {
    model.unusable_tokenizer = fmt::format(
        "{}: tokenizer.ggml.model = '{}' is not supported (expected 'llama', SentencePiece)", path, kind);
    log::get("model")->warn("{}; the model has no tokenizer: only prompt_tokens requests can run",
                            model.unusable_tokenizer);
    return std::nullopt;
  }
  if (tokens->size() != model.config.vocab_size)
    throw FormatError(fmt::format("{}: metadata tokenizer.ggml.tokens holds {} tokens, expected vocab_size = {}", path,
                                  tokens->size(), model.config.vocab_size));
  auto scores = gguf.get_float_array("tokenizer.ggml.scores");
  if (!scores) throw FormatError(fmt::format("{}: missing metadata tokenizer.ggml.scores (SentencePiece needs them)", path));
  if (scores->size() != tokens->size())
    throw FormatError(fmt::format("{}: metadata tokenizer.ggml.scores holds {} scores, expected {} (one per token)",
                                  path, scores->size(), tokens->size()));
  // SentencePiece marks spaces with U+2581 ("▁"); our pieces use plain spaces, as llama2.c does.
  static constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";
  for (std::string& piece : *tokens) {
    if (piece.find(kSpaceMarker) == std::string::npos) continue;
    std::string plain;
    for (size_t i = 0; i < piece.size();) {
      const bool marker = std::string_view(piece).substr(i, kSpaceMarker.size()) == kSpaceMarker;
      plain += marker ? ' ' : piece[i];
      i += marker ? kSpaceMarker.size() : 1;
    }
    piece = std::move(plain);
  }
  const TokenId byte_offset = Tokenizer::find_byte_fallback_offset(*tokens);
  Tokenizer tokenizer(std::move(*tokens), std::move(*scores), model.bos_id, model.eos_id, byte_offset);
  // llama.cpp's token types: CONTROL (3) and USER_DEFINED (4) are written as text by chat templates.
  if (auto types = gguf.get_int_array("tokenizer.ggml.token_type")) {
    if (types->size() != tokenizer.vocab_size())
      throw FormatError(fmt::format("{}: metadata tokenizer.ggml.token_type holds {} types, expected {} (one per token)",
                                    path, types->size(), tokenizer.vocab_size()));
    constexpr int64_t kControl = 3, kUserDefined = 4;
    std::vector<TokenId> special;
    for (size_t id = 0; id < types->size(); ++id)
      if ((*types)[id] == kControl || (*types)[id] == kUserDefined) special.push_back(static_cast<TokenId>(id));
    tokenizer.set_special_tokens(special);
  }
  return tokenizer;
}

}  // namespace

std::unique_ptr<Model> load_gguf_model(const std::string& path, const LoadOptions& options) {
  const GgufReader gguf(MappedFile::open(path));
  const std::string arch = gguf.get_string("general.architecture").value_or("");
  if (arch != "llama")
    throw FormatError(fmt::format("{}: metadata general.architecture = '{}', expected 'llama'", path, arch));

  auto model = std::make_unique<Model>();
  GgufModelBuilder builder(gguf, *model);
  ModelConfig& c = model->config;
  c.name = gguf.get_string("general.name").value_or(std::filesystem::path(path).stem().string());
  c.dim = builder.required_u32("llama.embedding_length");
  c.hidden_dim = builder.required_u32("llama.feed_forward_length");
  c.num_layers = builder.required_u32("llama.block_count");
  c.num_heads = builder.required_u32("llama.attention.head_count");
  c.num_kv_heads = builder.optional_u32("llama.attention.head_count_kv", c.num_heads);
  c.context_length = builder.required_u32("llama.context_length");
  c.rope_theta = static_cast<float>(gguf.get_float("llama.rope.freq_base").value_or(10000.0));
  c.norm_eps = static_cast<float>(gguf.get_float("llama.attention.layer_norm_rms_epsilon").value_or(1e-5));
  // llama.cpp runs arch "llama" with its NORM RoPE, which rotates adjacent pairs (its HF
  // converter permutes Q/K rows into that layout).
  c.rope_layout = RopeLayout::kAdjacentPairs;
  // The vocabulary size: the token list, else the metadata, else the embedding's rows.
  if (auto tokens = gguf.get_string_array("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<uint32_t>(std::min<size_t>(tokens->size(), UINT32_MAX));
  } else if (gguf.has("llama.vocab_size")) {
    c.vocab_size = builder.required_u32("llama.vocab_size");
  } else if (const GgufTensorInfo* embd = gguf.find_tensor("token_embd.weight"); embd != nullptr && embd->shape.size() == 2) {
    c.vocab_size = static_cast<uint32_t>(std::min<uint64_t>(embd->shape[1], UINT32_MAX));
  }
  c.tied_classifier = gguf.find_tensor("output.weight") == nullptr;
  c.validate(path);
  if (auto rope_dims = gguf.get_uint("llama.rope.dimension_count"); rope_dims && *rope_dims != c.head_dim())
    throw FormatError(fmt::format("{}: metadata llama.rope.dimension_count = {}, expected head_dim = {} (partial RoPE "
                                  "is not supported)",
                                  path, *rope_dims, c.head_dim()));
  if (auto scaling = gguf.get_string("llama.rope.scaling.type"); scaling && *scaling != "none")
    log::get("model")->warn("{}: llama.rope.scaling.type = '{}' is ignored (plain RoPE is used)", path, *scaling);

  const uint64_t dim = c.dim, hidden = c.hidden_dim, kv_dim = c.kv_dim(), vocab = c.vocab_size;
  model->token_embedding = builder.matrix("token_embd.weight", {dim, vocab});
  model->layers.resize(c.num_layers);
  for (uint32_t l = 0; l < c.num_layers; ++l) {
    LayerWeights& w = model->layers[l];
    const std::string prefix = fmt::format("blk.{}.", l);
    // ggml shapes list the inner (input) dimension first: [in, out] is row-major [out][in].
    w.attn_norm = builder.vector(prefix + "attn_norm.weight", dim);
    w.wq = builder.matrix(prefix + "attn_q.weight", {dim, dim});
    w.wk = builder.matrix(prefix + "attn_k.weight", {dim, kv_dim});
    w.wv = builder.matrix(prefix + "attn_v.weight", {dim, kv_dim});
    w.wo = builder.matrix(prefix + "attn_output.weight", {dim, dim});
    w.ffn_norm = builder.vector(prefix + "ffn_norm.weight", dim);
    w.w1 = builder.matrix(prefix + "ffn_gate.weight", {dim, hidden});
    w.w2 = builder.matrix(prefix + "ffn_down.weight", {hidden, dim});
    w.w3 = builder.matrix(prefix + "ffn_up.weight", {dim, hidden});
  }
  model->final_norm = builder.vector("output_norm.weight", dim);
  model->classifier = c.tied_classifier ? model->token_embedding : builder.matrix("output.weight", {dim, vocab});
  // As llama.cpp: weights of a block past llama.block_count mean the count is wrong, not that
  // the block may be skipped.
  for (const GgufTensorInfo& tensor : gguf.tensors()) {
    const std::string_view name = tensor.name;
    uint64_t block = 0;
    if (name.starts_with("blk.") &&
        std::from_chars(name.data() + 4, name.data() + name.size(), block).ec == std::errc() &&
        block >= c.num_layers)
      throw FormatError(fmt::format("{}: tensor {} belongs to block {}, but llama.block_count = {}", path,
                                    tensor.name, block, c.num_layers));
  }

  const uint32_t bos = builder.optional_u32("tokenizer.ggml.bos_token_id", 1);
  const uint32_t eos = builder.optional_u32("tokenizer.ggml.eos_token_id", 2);
  for (const auto& [field, id] : {std::pair{"tokenizer.ggml.bos_token_id", bos}, std::pair{"tokenizer.ggml.eos_token_id", eos}})
    if (id >= c.vocab_size)
      throw FormatError(fmt::format("{}: metadata {} = {}, expected an id below vocab_size = {}", path, field, id, c.vocab_size));
  model->bos_id = static_cast<TokenId>(bos);
  model->eos_id = static_cast<TokenId>(eos);
  // BOS ends a story in the llama2.c-trained models, as EOS ends a generation everywhere.
  model->stop_tokens = {model->eos_id, model->bos_id};
  model->tokenizer = options.tokenizer_path.empty() ? read_gguf_tokenizer(gguf, *model)
                                                    : find_llama2c_tokenizer(path, c.vocab_size, options);
  model->chat_template = gguf.get_string("tokenizer.chat_template").value_or("");
  model->file_type = fmt::format("GGUF v{} {}", gguf.version(), ggml_type_name(gguf.find_tensor("blk.0.attn_q.weight")->type));
  model->mapped_file = gguf.file();
  model->storage.push_back(model->mapped_file);
  return model;
}

}  // namespace prunekv::detail
