#include "tests/testing/gguf_writer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <unistd.h>

#include <fmt/format.h>

#include "model/gguf_reader.h"
#include "model/mapped_file.h"
#include "tests/testing/quantize.h"

namespace prunekv::testing {
namespace {

// GGUF metadata value types (spec: gguf_metadata_value_type).
constexpr uint32_t kU32 = 4, kI32 = 5, kF32 = 6, kString = 8, kArray = 9, kU64 = 10;

template <class T>
void append(std::vector<uint8_t>& out, const T& value) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}
void append_string(std::vector<uint8_t>& out, const std::string& s) {
  append<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}
template <class T>
std::vector<uint8_t> scalar(const T& value) {
  std::vector<uint8_t> out;
  append(out, value);
  return out;
}

size_t count_of(const std::vector<uint64_t>& shape) {
  size_t n = 1;
  for (const uint64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

}  // namespace

void GgufWriter::set(const std::string& key, uint32_t type, std::vector<uint8_t> payload) {
  for (Entry& e : metadata_) {
    if (e.key == key) {
      e.type = type;
      e.payload = std::move(payload);
      return;
    }
  }
  metadata_.push_back({key, type, std::move(payload)});
}

void GgufWriter::set_uint32(const std::string& key, uint32_t value) { set(key, kU32, scalar(value)); }
void GgufWriter::set_uint64(const std::string& key, uint64_t value) { set(key, kU64, scalar(value)); }
void GgufWriter::set_int32(const std::string& key, int32_t value) { set(key, kI32, scalar(value)); }
void GgufWriter::set_float32(const std::string& key, float value) { set(key, kF32, scalar(value)); }
void GgufWriter::set_string(const std::string& key, const std::string& value) {
  std::vector<uint8_t> payload;
  append_string(payload, value);
  set(key, kString, std::move(payload));
}
void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& values) {
  std::vector<uint8_t> payload;
  append<uint32_t>(payload, kString);
  append<uint64_t>(payload, values.size());
  for (const auto& v : values) append_string(payload, v);
  set(key, kArray, std::move(payload));
}
void GgufWriter::set_float_array(const std::string& key, const std::vector<float>& values) {
  std::vector<uint8_t> payload;
  append<uint32_t>(payload, kF32);
  append<uint64_t>(payload, values.size());
  for (const float v : values) append(payload, v);
  set(key, kArray, std::move(payload));
}
void GgufWriter::set_int32_array(const std::string& key, const std::vector<int32_t>& values) {
  std::vector<uint8_t> payload;
  append<uint32_t>(payload, kI32);
  append<uint64_t>(payload, values.size());
  for (const int32_t v : values) append(payload, v);
  set(key, kArray, std::move(payload));
}
void GgufWriter::remove_metadata(const std::string& key) {
  std::erase_if(metadata_, [&](const Entry& e) { return e.key == key; });
}

void GgufWriter::add_tensor_raw(const std::string& name, std::vector<uint64_t> shape, uint32_t ggml_type,
                                std::vector<uint8_t> bytes) {
  remove_tensor(name);
  tensors_.push_back({name, std::move(shape), ggml_type, std::move(bytes)});
}
void GgufWriter::add_tensor_f32(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  add_tensor_raw(name, std::move(shape), 0, std::move(bytes));
}
void GgufWriter::add_tensor_f16(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values) {
  add_tensor(name, std::move(shape), GgmlType::kF16, values);
}
void GgufWriter::add_tensor_bf16(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values) {
  std::vector<uint8_t> bytes;
  for (const float v : values) append(bytes, static_cast<uint16_t>(std::bit_cast<uint32_t>(v) >> 16));  // truncates
  add_tensor_raw(name, std::move(shape), 30, std::move(bytes));
}
void GgufWriter::add_tensor_q8_0(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values) {
  add_tensor(name, std::move(shape), GgmlType::kQ8_0, values);
}
void GgufWriter::add_tensor(const std::string& name, std::vector<uint64_t> shape, GgmlType type,
                            const std::vector<float>& values) {
  add_tensor_raw(name, std::move(shape), static_cast<uint32_t>(type), quantize(type, values));
}
void GgufWriter::remove_tensor(const std::string& name) {
  std::erase_if(tensors_, [&](const Tensor& t) { return t.name == name; });
}

std::vector<uint8_t> GgufWriter::bytes() const {
  std::vector<uint8_t> out;
  append<uint32_t>(out, 0x46554747);  // "GGUF"
  append<uint32_t>(out, version);
  const bool write_alignment = alignment != 32;
  append<uint64_t>(out, tensors_.size());
  append<uint64_t>(out, metadata_.size() + (write_alignment ? 1 : 0));
  for (const Entry& e : metadata_) {
    append_string(out, e.key);
    append<uint32_t>(out, e.type);
    out.insert(out.end(), e.payload.begin(), e.payload.end());
  }
  if (write_alignment) {
    append_string(out, "general.alignment");
    append<uint32_t>(out, kU32);
    append<uint32_t>(out, alignment);
  }
  auto align = [&](uint64_t n) { return (n + alignment - 1) / alignment * alignment; };
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    append_string(out, t.name);
    append<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (const uint64_t d : t.shape) append(out, d);
    append<uint32_t>(out, t.type);
    append<uint64_t>(out, offset);
    offset = align(offset + t.data.size());
  }
  out.resize(align(out.size()), 0);
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(align(out.size()), 0);
  }
  return out;
}

void GgufWriter::write(const std::filesystem::path& path) const { write_bytes(path, bytes()); }

std::vector<float> seeded_values(const std::string& name, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed ^ std::hash<std::string>{}(name));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(n);
  for (float& v : values) v = uniform(rng);
  return values;
}

GgufWriter make_llama_gguf(const ModelConfig& c, uint64_t seed) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", "tiny-test");
  w.set_uint32("llama.context_length", c.context_length);
  w.set_uint32("llama.embedding_length", c.dim);
  w.set_uint32("llama.feed_forward_length", c.hidden_dim);
  w.set_uint32("llama.block_count", c.num_layers);
  w.set_uint32("llama.attention.head_count", c.num_heads);
  w.set_uint32("llama.attention.head_count_kv", c.num_kv_heads);
  w.set_float32("llama.rope.freq_base", c.rope_theta);
  w.set_float32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  w.set_uint32("llama.rope.dimension_count", c.head_dim());
  if (c.vocab_size >= 259) {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};  // UNKNOWN, CONTROL
    for (int b = 0; b < 256; ++b) {
      tokens.push_back(fmt::format("<0x{:02X}>", b));
      scores.push_back(0);
      types.push_back(6);  // BYTE
    }
    for (uint32_t i = 259; i < c.vocab_size; ++i) {
      // "▁", "a", then "▁a", "▁b", .., "▁az", ..: enough for encode to merge " " + "a".
      const uint32_t k = i - 261;
      tokens.push_back(i == 259 ? "\xE2\x96\x81"
                       : i == 260 ? "a"
                                  : fmt::format("\xE2\x96\x81{}", static_cast<char>('a' + k % 26)) + std::string(k / 26, 'z'));
      scores.push_back(-static_cast<float>(i));
      types.push_back(1);  // NORMAL
    }
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    w.set_float_array("tokenizer.ggml.scores", scores);
    w.set_int32_array("tokenizer.ggml.token_type", types);
    w.set_uint32("tokenizer.ggml.bos_token_id", 1);
    w.set_uint32("tokenizer.ggml.eos_token_id", 2);
  }
  const uint64_t dim = c.dim, hidden = c.hidden_dim, kv_dim = c.kv_dim(), vocab = c.vocab_size;
  auto add = [&](const std::string& name, std::vector<uint64_t> shape) {
    w.add_tensor_f32(name, shape, seeded_values(name, count_of(shape), seed));
  };
  add("token_embd.weight", {dim, vocab});
  for (uint32_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    add(p + "attn_norm.weight", {dim});
    add(p + "attn_q.weight", {dim, dim});
    add(p + "attn_k.weight", {dim, kv_dim});
    add(p + "attn_v.weight", {dim, kv_dim});
    add(p + "attn_output.weight", {dim, dim});
    add(p + "ffn_norm.weight", {dim});
    add(p + "ffn_gate.weight", {dim, hidden});
    add(p + "ffn_down.weight", {hidden, dim});
    add(p + "ffn_up.weight", {dim, hidden});
  }
  add("output_norm.weight", {dim});
  if (!c.tied_classifier) add("output.weight", {dim, vocab});
  return w;
}

TempDir::TempDir() {
  // Unique per process and instance; tests in one process may create several.
  static int counter = 0;
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          fmt::format("prunekv-test-{}-{}-{:08x}", ::getpid(), counter++, rd());
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_truncated_copy(const std::filesystem::path& source, const std::filesystem::path& target, size_t size) {
  std::vector<uint8_t> bytes = read_bytes(source);
  bytes.resize(std::min(size, bytes.size()));
  write_bytes(target, bytes);
}

void copy_gguf_with_string(const std::filesystem::path& source, const std::filesystem::path& target,
                           const std::string& key, const std::string& value) {
  const GgufReader reader(MappedFile::open(source.string()));
  if (reader.version() < 2) throw std::runtime_error("copy_gguf_with_string: GGUF v1 has 32-bit counts");
  const uint64_t alignment = reader.get_uint("general.alignment").value_or(32);
  auto entry = [](const std::string& k, const std::string& v) {
    std::vector<uint8_t> out;
    auto put = [&](const void* p, size_t n) { out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n); };
    const uint64_t klen = k.size(), vlen = v.size();
    const uint32_t type = 8;  // string
    put(&klen, 8), put(k.data(), k.size()), put(&type, 4), put(&vlen, 8), put(v.data(), v.size());
    return out;
  };
  std::vector<uint8_t> added = entry(key, value);
  const std::string filler_key = "prunekv.test.padding";
  const size_t filler_size = entry(filler_key, "").size();
  const size_t pad = (alignment - (added.size() + filler_size) % alignment) % alignment;
  const std::vector<uint8_t> filler = entry(filler_key, std::string(pad, ' '));
  added.insert(added.end(), filler.begin(), filler.end());

  std::vector<uint8_t> bytes = read_bytes(source);
  constexpr size_t kCountOffset = 16;  // magic, version, tensor count, then the metadata count
  uint64_t count = 0;
  std::memcpy(&count, bytes.data() + kCountOffset, 8);
  count += 2;
  std::memcpy(bytes.data() + kCountOffset, &count, 8);
  bytes.insert(bytes.begin() + kCountOffset + 8, added.begin(), added.end());
  write_bytes(target, bytes);
}

}  // namespace prunekv::testing
