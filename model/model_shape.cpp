#include "model/model_shape.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/check.h"
#include "common/error.h"
#include "common/text.h"
#include "model/mapped_file.h"
#include "model/model.h"

namespace prunekv {
namespace {

// From each model's published config.json (Hugging Face): num_hidden_layers, hidden_size,
// num_attention_heads, num_key_value_heads, intermediate_size, vocab_size,
// max_position_embeddings (Mistral-7B v0.3 and Qwen2.5-7B: 32768). head_dim = dim / heads.
struct NamedShape {
  const char* name;
  uint32_t num_layers, dim, num_heads, num_kv_heads, head_dim, hidden_dim, vocab_size, context_length;
  float rope_theta;
};
constexpr std::array kNamedShapes = {
    NamedShape{"Llama-3-8B", 32, 4096, 32, 8, 128, 14336, 128256, 8192, 500000.0f},
    NamedShape{"Llama-3-70B", 80, 8192, 64, 8, 128, 28672, 128256, 8192, 500000.0f},
    NamedShape{"Mistral-7B", 32, 4096, 32, 8, 128, 14336, 32768, 32768, 1000000.0f},
    NamedShape{"Qwen2.5-7B", 28, 3584, 28, 4, 128, 18944, 152064, 32768, 1000000.0f},
};

ModelConfig to_config(const NamedShape& shape) {
  PKV_CHECK(shape.dim == shape.num_heads * shape.head_dim, "{}: dim != heads x head_dim", shape.name);
  ModelConfig config;
  config.name = shape.name;
  config.num_layers = shape.num_layers;
  config.dim = shape.dim;
  config.num_heads = shape.num_heads;
  config.num_kv_heads = shape.num_kv_heads;
  config.hidden_dim = shape.hidden_dim;
  config.vocab_size = shape.vocab_size;
  config.context_length = shape.context_length;
  config.rope_theta = shape.rope_theta;
  config.rope_layout = RopeLayout::kHalfSplit;
  config.tied_classifier = false;  // all four ship a separate lm_head
  return config;
}

// Reads little-endian values from the mapped header; every read is bounds-checked so a
// truncated file is a FormatError, never a crash.
class HeaderCursor {
 public:
  HeaderCursor(const MappedFile& file) : file_(file) {}
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, file_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }
  std::string read_string(const char* what) {
    const uint64_t length = read<uint64_t>(what);
    need(length, what);
    std::string out(reinterpret_cast<const char*>(file_.data() + offset_), length);
    offset_ += length;
    return out;
  }
  void skip(uint64_t n, const char* what) {
    need(n, what);
    offset_ += n;
  }

 private:
  void need(uint64_t n, const char* what) {
    if (n > file_.size() || offset_ > file_.size() - n)
      throw FormatError(fmt::format("{}: truncated header while reading {} at byte {} (file has {} bytes)",
                                    file_.path(), what, offset_, file_.size()));
  }
  const MappedFile& file_;
  uint64_t offset_ = 0;
};

// GGUF metadata value types (ggml's gguf.h).
enum GgufType : uint32_t {
  kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64
};

size_t gguf_scalar_size(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

// A metadata value reduced to what shapes need: an integer, a float, a string, or an array
// length (tokenizer.ggml.tokens gives the vocabulary size).
struct GgufValue {
  std::optional<uint64_t> integer;
  std::optional<double> real;
  std::string text;
  uint64_t array_length = 0;
};

GgufValue read_gguf_value(HeaderCursor& cursor, uint32_t type, const std::string& path, const std::string& key) {
  GgufValue value;
  switch (type) {
    case kU8: value.integer = cursor.read<uint8_t>("u8"); break;
    case kI8: value.integer = static_cast<uint64_t>(cursor.read<int8_t>("i8")); break;
    case kU16: value.integer = cursor.read<uint16_t>("u16"); break;
    case kI16: value.integer = static_cast<uint64_t>(cursor.read<int16_t>("i16")); break;
    case kU32: value.integer = cursor.read<uint32_t>("u32"); break;
    case kI32: value.integer = static_cast<uint64_t>(cursor.read<int32_t>("i32")); break;
    case kU64: value.integer = cursor.read<uint64_t>("u64"); break;
    case kI64: value.integer = static_cast<uint64_t>(cursor.read<int64_t>("i64")); break;
    case kF32: value.real = cursor.read<float>("f32"); break;
    case kF64: value.real = cursor.read<double>("f64"); break;
    case kBool: value.integer = cursor.read<uint8_t>("bool"); break;
    case kString: value.text = cursor.read_string("string"); break;
    case kArray: {
      const uint32_t element_type = cursor.read<uint32_t>("array type");
      value.array_length = cursor.read<uint64_t>("array length");
      if (element_type == kString) {
        for (uint64_t i = 0; i < value.array_length; ++i) cursor.read_string("array string");
      } else {
        const size_t size = gguf_scalar_size(element_type);
        if (size == 0)
          throw FormatError(fmt::format("{}: metadata key '{}': array element type {}, expected a scalar or string type",
                                        path, key, element_type));
        cursor.skip(size * value.array_length, "array data");
      }
      break;
    }
    default:
      throw FormatError(fmt::format("{}: metadata key '{}': value type {}, expected 0..12", path, key, type));
  }
  return value;
}

ModelConfig read_gguf_shape(const MappedFile& file) {
  HeaderCursor cursor(file);
  cursor.skip(4, "magic");
  const uint32_t version = cursor.read<uint32_t>("version");
  if (version < 2)
    throw FormatError(fmt::format("{}: GGUF version {}, expected 2 or later", file.path(), version));
  const uint64_t tensor_count = cursor.read<uint64_t>("tensor count");
  const uint64_t num_kv = cursor.read<uint64_t>("metadata count");
  std::string architecture;
  std::vector<std::pair<std::string, GgufValue>> entries;
  for (uint64_t i = 0; i < num_kv; ++i) {
    std::string key = cursor.read_string("metadata key");
    const uint32_t type = cursor.read<uint32_t>("metadata type");
    GgufValue value = read_gguf_value(cursor, type, file.path(), key);
    if (key == "general.architecture") architecture = value.text;
    entries.emplace_back(std::move(key), std::move(value));
  }
  if (architecture.empty())
    throw FormatError(fmt::format("{}: metadata key 'general.architecture' missing", file.path()));
  auto find = [&](const std::string& key) -> const GgufValue* {
    for (const auto& [k, v] : entries)
      if (k == key) return &v;
    return nullptr;
  };
  auto integer = [&](const std::string& key, std::optional<uint64_t> fallback = std::nullopt) -> uint32_t {
    const GgufValue* value = find(architecture + "." + key);
    if (value && value->integer) return static_cast<uint32_t>(*value->integer);
    if (fallback) return static_cast<uint32_t>(*fallback);
    throw FormatError(fmt::format("{}: metadata key '{}.{}' missing, expected an integer", file.path(), architecture, key));
  };
  ModelConfig config;
  const GgufValue* name = find("general.name");
  config.name = name && !name->text.empty() ? name->text : std::filesystem::path(file.path()).filename().string();
  config.dim = integer("embedding_length");
  config.hidden_dim = integer("feed_forward_length");
  config.num_layers = integer("block_count");
  config.num_heads = integer("attention.head_count");
  config.num_kv_heads = integer("attention.head_count_kv", config.num_heads);
  config.context_length = integer("context_length");
  const GgufValue* tokens = find("tokenizer.ggml.tokens");
  const GgufValue* vocab = find(architecture + ".vocab_size");
  if (vocab && vocab->integer)
    config.vocab_size = static_cast<uint32_t>(*vocab->integer);
  else if (tokens)
    config.vocab_size = static_cast<uint32_t>(tokens->array_length);
  else
    throw FormatError(fmt::format("{}: neither '{}.vocab_size' nor 'tokenizer.ggml.tokens' present", file.path(), architecture));
  if (const GgufValue* theta = find(architecture + ".rope.freq_base"); theta && theta->real)
    config.rope_theta = static_cast<float>(*theta->real);
  config.rope_layout = RopeLayout::kHalfSplit;
  // Tensor infos follow the metadata: the classifier is untied when "output.weight" exists.
  const uint64_t num_tensors = tensor_count;
  config.tied_classifier = true;
  for (uint64_t i = 0; i < num_tensors; ++i) {
    const std::string tensor = cursor.read_string("tensor name");
    const uint32_t num_dims = cursor.read<uint32_t>("tensor dims");
    cursor.skip(uint64_t{8} * num_dims + 4 + 8, "tensor info");
    if (tensor == "output.weight") config.tied_classifier = false;
  }
  return config;
}

// llama2.c legacy header: 7 x int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size
// (negative = untied classifier), seq_len.
ModelConfig read_llama2c_shape(const MappedFile& file) {
  HeaderCursor cursor(file);
  std::array<int32_t, 7> header{};
  for (auto& field : header) field = cursor.read<int32_t>("llama2.c header");
  ModelConfig config;
  config.name = std::filesystem::path(file.path()).filename().string();
  config.dim = static_cast<uint32_t>(header[0]);
  config.hidden_dim = static_cast<uint32_t>(header[1]);
  config.num_layers = static_cast<uint32_t>(header[2]);
  config.num_heads = static_cast<uint32_t>(header[3]);
  config.num_kv_heads = static_cast<uint32_t>(header[4]);
  config.vocab_size = static_cast<uint32_t>(header[5] < 0 ? -int64_t{header[5]} : header[5]);
  config.context_length = static_cast<uint32_t>(header[6]);
  config.tied_classifier = header[5] > 0;
  for (int i : {0, 1, 2, 3, 4, 6})
    if (header[i] <= 0)
      throw FormatError(fmt::format("{}: llama2.c header field {} = {}, expected a positive value", file.path(), i, header[i]));
  return config;
}

}  // namespace

std::vector<std::string> model_shape_names() {
  std::vector<std::string> names;
  for (const auto& shape : kNamedShapes) names.emplace_back(shape.name);
  return names;
}

ModelConfig read_model_shape_from_file(const std::string& path) {
  const auto file = MappedFile::open(path);
  const bool is_gguf = file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0;
  ModelConfig config = is_gguf ? read_gguf_shape(*file) : read_llama2c_shape(*file);
  config.validate(path);
  return config;
}

ModelConfig model_shape(std::string_view name_or_path) {
  const std::string wanted = to_lower_ascii(name_or_path);
  for (const auto& shape : kNamedShapes)
    if (to_lower_ascii(shape.name) == wanted) return to_config(shape);
  // Synthetic models are built at their exact shapes; their weights are small enough to make.
  if (name_or_path.starts_with("synthetic:")) return load_model(name_or_path)->config;
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::string(name_or_path), ec))
    return read_model_shape_from_file(std::string(name_or_path));
  throw ConfigError(fmt::format("model shape '{}': expected one of {}, synthetic:NAME or an existing GGUF / llama2.c file",
                                name_or_path, fmt::join(model_shape_names(), ", ")));
}

KvDtype parse_kv_dtype(std::string_view text) {
  const std::string t = to_lower_ascii(text);
  if (t == "fp32" || t == "f32") return KvDtype::kF32;
  if (t == "fp16" || t == "f16") return KvDtype::kF16;
  throw ConfigError(fmt::format("KV dtype '{}': expected fp32 or fp16", text));
}

}  // namespace prunekv
