#include "model/gguf_loader.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/log.h"
#include "model/gguf_reader.h"
#include "model/llama2c_loader.h"

namespace prunekv::detail {
namespace {

// IEEE half -> float, exact for every input (subnormals, infinities, NaN).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal half: normalise into a float
    uint32_t e = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mantissa & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

template <class T>
T load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// Dequantises one tensor into `out`; ranges of whole Q8_0 blocks run in parallel.
void convert_to_f32(const GgufTensorInfo& t, float* out) {
  const uint64_t n = t.num_elements();
  constexpr uint64_t kQ8Block = 32, kQ8BlockBytes = 34;  // {fp16 scale, int8 q[32]}
  const uint64_t units = t.type == GgmlType::kQ8_0 ? n / kQ8Block : n;
  tbb::parallel_for(tbb::blocked_range<uint64_t>(0, units, 1u << 14), [&](const tbb::blocked_range<uint64_t>& r) noexcept {
    for (uint64_t i = r.begin(); i != r.end(); ++i) {
      switch (t.type) {
        case GgmlType::kF16: out[i] = half_to_float(load<uint16_t>(t.data + 2 * i)); break;
        case GgmlType::kBF16: out[i] = std::bit_cast<float>(static_cast<uint32_t>(load<uint16_t>(t.data + 2 * i)) << 16); break;
        case GgmlType::kF32: out[i] = load<float>(t.data + 4 * i); break;
        case GgmlType::kQ8_0: {
          const uint8_t* block = t.data + i * kQ8BlockBytes;
          const float scale = half_to_float(load<uint16_t>(block));
          for (uint64_t j = 0; j < kQ8Block; ++j)
            out[i * kQ8Block + j] = scale * static_cast<float>(static_cast<int8_t>(block[2 + j]));
          break;
        }
        default: break;  // rejected before conversion
      }
    }
  });
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

  // The tensor `name` as fp32 [shape reversed] row-major: a view into the map for F32, else an
  // owned converted copy (the kernels want fp32; converting once at load keeps them simple).
  const float* tensor(const std::string& name, std::vector<uint64_t> expected_shape) {
    const GgufTensorInfo* t = gguf_.find_tensor(name);
    if (t == nullptr)
      throw FormatError(fmt::format("{}: missing tensor {} (expected shape {})", gguf_.path(), name,
                                    shape_string(expected_shape)));
    if (t->shape != expected_shape)
      throw FormatError(fmt::format("{}: tensor {} has shape {}, expected {}", gguf_.path(), name,
                                    shape_string(t->shape), shape_string(expected_shape)));
    switch (t->type) {
      case GgmlType::kF32:
        if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0) return reinterpret_cast<const float*>(t->data);
        break;  // misaligned (alignment < 4): copy instead
      case GgmlType::kF16: case GgmlType::kBF16: case GgmlType::kQ8_0: break;
      default:
        throw FormatError(fmt::format("{}: tensor {} has type {}, expected one of F32, F16, BF16, Q8_0", gguf_.path(),
                                      name, ggml_type_name(t->type)));
    }
    auto buffer = std::make_shared<std::vector<float>>(t->num_elements());
    convert_to_f32(*t, buffer->data());
    model_.storage.push_back(buffer);
    return buffer->data();
  }

 private:
  uint32_t checked_u32(const std::string& key, uint64_t value) const {
    if (value > UINT32_MAX)
      throw FormatError(fmt::format("{}: metadata {} = {}, expected at most {}", gguf_.path(), key, value, UINT32_MAX));
    return static_cast<uint32_t>(value);
  }

  const GgufReader& gguf_;
  Model& model_;
};

std::optional<Tokenizer> read_gguf_tokenizer(const GgufReader& gguf, const Model& model) {
  const std::string& path = gguf.path();
  auto tokens = gguf.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) {
    log::get("model")->warn("{}: no tokenizer.ggml.tokens; the model has no tokenizer", path);
    return std::nullopt;
  }
  const std::string kind = gguf.get_string("tokenizer.ggml.model").value_or("llama");
  if (kind != "llama") {
    log::get("model")->warn("{}: tokenizer.ggml.model = '{}' is not supported (expected 'llama', SentencePiece); "
                            "the model has no tokenizer",
                            path, kind);
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
  return Tokenizer(std::move(*tokens), std::move(*scores), model.bos_id, model.eos_id, byte_offset);
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
  model->token_embedding = builder.tensor("token_embd.weight", {dim, vocab});
  model->layers.resize(c.num_layers);
  for (uint32_t l = 0; l < c.num_layers; ++l) {
    LayerWeights& w = model->layers[l];
    const std::string prefix = fmt::format("blk.{}.", l);
    // ggml shapes list the inner (input) dimension first: [in, out] is row-major [out][in].
    w.attn_norm = builder.tensor(prefix + "attn_norm.weight", {dim});
    w.wq = builder.tensor(prefix + "attn_q.weight", {dim, dim});
    w.wk = builder.tensor(prefix + "attn_k.weight", {dim, kv_dim});
    w.wv = builder.tensor(prefix + "attn_v.weight", {dim, kv_dim});
    w.wo = builder.tensor(prefix + "attn_output.weight", {dim, dim});
    w.ffn_norm = builder.tensor(prefix + "ffn_norm.weight", {dim});
    w.w1 = builder.tensor(prefix + "ffn_gate.weight", {dim, hidden});
    w.w2 = builder.tensor(prefix + "ffn_down.weight", {hidden, dim});
    w.w3 = builder.tensor(prefix + "ffn_up.weight", {dim, hidden});
  }
  model->final_norm = builder.tensor("output_norm.weight", {dim});
  model->classifier = c.tied_classifier ? model->token_embedding : builder.tensor("output.weight", {dim, vocab});

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
  model->file_type = fmt::format("GGUF v{} {}", gguf.version(), ggml_type_name(gguf.find_tensor("blk.0.attn_q.weight")->type));
  model->storage.push_back(gguf.file());
  return model;
}

}  // namespace prunekv::detail
