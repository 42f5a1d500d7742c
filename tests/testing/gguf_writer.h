#pragma once
// Writes small GGUF files (v2/v3) from metadata and tensors, so loader tests build the exact
// file they need (valid, or broken in one chosen way) in a temporary folder.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/ggml_type.h"
#include "model/model_config.h"

namespace prunekv::testing {

class GgufWriter {
 public:
  uint32_t version = 3;
  uint32_t alignment = 32;  // also written as general.alignment when not 32

  // Setting a key again replaces its value (keeping its position).
  void set_uint32(const std::string& key, uint32_t value);
  void set_uint64(const std::string& key, uint64_t value);
  void set_int32(const std::string& key, int32_t value);
  void set_float32(const std::string& key, float value);
  void set_string(const std::string& key, const std::string& value);
  void set_string_array(const std::string& key, const std::vector<std::string>& values);
  void set_float_array(const std::string& key, const std::vector<float>& values);
  void set_int32_array(const std::string& key, const std::vector<int32_t>& values);
  void remove_metadata(const std::string& key);

  // `shape` in ggml order (innermost first). F16 rounds to nearest; Q8_0 quantises per 32.
  void add_tensor_f32(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values);
  void add_tensor_f16(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values);
  void add_tensor_bf16(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values);
  void add_tensor_q8_0(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values);
  // `values` stored as `type` by testing::quantize (tests/testing/quantize.h).
  void add_tensor(const std::string& name, std::vector<uint64_t> shape, GgmlType type, const std::vector<float>& values);
  // Any ggml type id with caller-made bytes (for unsupported or corrupt tensors).
  void add_tensor_raw(const std::string& name, std::vector<uint64_t> shape, uint32_t ggml_type,
                      std::vector<uint8_t> bytes);
  void remove_tensor(const std::string& name);

  std::vector<uint8_t> bytes() const;
  void write(const std::filesystem::path& path) const;

 private:
  struct Entry {
    std::string key;
    uint32_t type;
    std::vector<uint8_t> payload;  // the value bytes after the type
  };
  struct Tensor {
    std::string name;
    std::vector<uint64_t> shape;
    uint32_t type;
    std::vector<uint8_t> data;
  };
  void set(const std::string& key, uint32_t type, std::vector<uint8_t> payload);

  std::vector<Entry> metadata_;
  std::vector<Tensor> tensors_;
};

// A complete llama-architecture GGUF for `config` with seeded uniform F32 weights, an SPM
// vocabulary (<unk>, <s>, </s>, 256 byte tokens, then "▁", "a", "▁a", "▁b".. pieces) when vocab_size >= 259,
// and output.weight when the classifier is not tied.
GgufWriter make_llama_gguf(const ModelConfig& config, uint64_t seed = 7);

// The same seeded values make_llama_gguf writes for tensor `name` (element count `n`).
std::vector<float> seeded_values(const std::string& name, size_t n, uint64_t seed);

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path file(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes the first `size` bytes of `source` to `target`.
void write_truncated_copy(const std::filesystem::path& source, const std::filesystem::path& target, size_t size);
void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);
// Copies the GGUF `source` to `target` with one more string metadata entry (a key the file does
// not have yet), e.g. a tokenizer.chat_template for a real model that has none. The entry goes
// first, padded with a filler entry to the file's alignment so every tensor offset stays valid.
void copy_gguf_with_string(const std::filesystem::path& source, const std::filesystem::path& target,
                           const std::string& key, const std::string& value);
std::vector<uint8_t> read_bytes(const std::filesystem::path& path);

}  // namespace prunekv::testing
