#pragma once
// Parses a GGUF file (v2/v3, little-endian): the metadata key/values and the tensor table, with
// every offset and length checked against the file size. Tensor data stays in the memory map.
// Immutable after construction.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/ggml_type.h"
#include "model/mapped_file.h"

namespace prunekv {

enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6, kBool = 7,
  kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> shape;  // ggml order: shape[0] is the innermost (contiguous) dimension
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;  // inside the memory map; num_bytes are in bounds
  uint64_t num_bytes = 0;
  uint64_t num_elements() const;
};

class GgufReader {
 public:
  // Parses the header, metadata and tensor table. Throws FormatError naming the file, what was
  // being read, the expected and found values (wrong magic, version, truncation, bad offsets).
  explicit GgufReader(std::shared_ptr<const MappedFile> file);

  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<const MappedFile>& file() const { return file_; }
  uint32_t version() const { return version_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

  bool has(std::string_view key) const { return metadata_.count(std::string(key)) != 0; }
  // Typed metadata getters: nullopt when the key is absent; FormatError when it holds another
  // type (any integer type converts to an integer if the value fits, any float to a float).
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
  std::optional<std::vector<float>> get_float_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

 private:
  struct Value {
    GgufValueType type;
    GgufValueType element_type = GgufValueType::kUint8;  // arrays only
    uint64_t count = 0;                                  // arrays only
    size_t offset = 0;  // of the value (for arrays: of the first element)
  };
  const Value* find_value(std::string_view key, GgufValueType expected_kind, std::string_view wanted) const;

  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  std::unordered_map<std::string, Value> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace prunekv
