#include "model/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"

namespace prunekv {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint32_t kDefaultAlignment = 32;   // GGUF spec, when general.alignment is absent
constexpr uint32_t kMaxDims = 4;             // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 4;

// Size of a fixed-size metadata value; 0 for strings and arrays.
uint64_t fixed_value_bytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    case GgufValueType::kString: case GgufValueType::kArray: return 0;
  }
  return 0;
}

std::string_view value_type_name(GgufValueType type) {
  static constexpr std::string_view kNames[] = {"uint8", "int8",    "uint16", "int16",  "uint32", "int32",  "float32",
                                                "bool",  "string",  "array",  "uint64", "int64",  "float64"};
  const auto i = static_cast<uint32_t>(type);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

bool is_integer(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kUint16: case GgufValueType::kInt16:
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kUint64: case GgufValueType::kInt64:
      return true;
    default: return false;
  }
}

// Bounds-checked sequential reads over the mapped bytes; every failure names the file, what was
// being read, where, and how many bytes were needed.
class Cursor {
 public:
  explicit Cursor(const MappedFile& file) : file_(file) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return file_.size() - pos_; }

  void need(uint64_t bytes, std::string_view what) const {
    if (bytes > remaining())
      throw FormatError(fmt::format("{}: truncated: reading {} at offset {} needs {} bytes, only {} left (file is {} bytes)",
                                    file_.path(), what, pos_, bytes, remaining(), file_.size()));
  }
  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, file_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string_view read_string(std::string_view what) {
    const auto len = read<uint64_t>(what);
    need(len, what);
    std::string_view s(reinterpret_cast<const char*>(file_.data() + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  void skip(uint64_t bytes, std::string_view what) {
    need(bytes, what);
    pos_ += static_cast<size_t>(bytes);
  }
  // Skips `count` values of `type` (strings and nested arrays walked one by one).
  void skip_values(GgufValueType type, uint64_t count, std::string_view key, int depth) {
    if (const uint64_t size = fixed_value_bytes(type); size != 0) {
      if (count > remaining() / size) throw too_many(key, count, size);
      skip(count * size, key);
      return;
    }
    // Each string or array element takes at least 8 bytes: reject absurd counts before looping.
    if (count > remaining() / 8) throw too_many(key, count, 8);
    for (uint64_t i = 0; i < count; ++i) {
      if (type == GgufValueType::kString) {
        read_string(key);
      } else {
        if (depth >= kMaxArrayNesting)
          throw FormatError(fmt::format("{}: metadata {}: arrays nested deeper than {}", file_.path(), key,
                                        kMaxArrayNesting));
        const auto element = read_value_type(key);
        const auto n = read<uint64_t>(key);
        skip_values(element, n, key, depth + 1);
      }
    }
  }
  FormatError too_many(std::string_view key, uint64_t count, uint64_t min_bytes) const {
    return FormatError(fmt::format("{}: truncated: metadata {} holds {} values of at least {} bytes each at offset {}, "
                                   "only {} bytes left",
                                   file_.path(), key, count, min_bytes, pos_, remaining()));
  }
  GgufValueType read_value_type(std::string_view key) {
    const auto raw = read<uint32_t>(key);
    if (raw > static_cast<uint32_t>(GgufValueType::kFloat64))
      throw FormatError(fmt::format("{}: metadata {} has value type {}, expected 0..12 (GGUF spec)", file_.path(), key, raw));
    return static_cast<GgufValueType>(raw);
  }

 private:
  const MappedFile& file_;
  size_t pos_ = 0;
};

template <class T>
T load(const MappedFile& file, size_t offset) {
  T value;
  std::memcpy(&value, file.data() + offset, sizeof(T));
  return value;
}

}  // namespace

uint64_t GgufTensorInfo::num_elements() const {
  uint64_t n = 1;
  for (const uint64_t d : shape) n *= d;  // bounded at parse time
  return n;
}

GgufReader::GgufReader(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  const std::string& path = file_->path();
  Cursor in(*file_);
  const auto magic = in.read<uint32_t>("the GGUF magic");
  if (magic != kGgufMagic)
    throw FormatError(fmt::format("{}: wrong magic 0x{:08x}, expected 0x{:08x} (\"GGUF\")", path, magic, kGgufMagic));
  version_ = in.read<uint32_t>("the GGUF version");
  if (version_ != 2 && version_ != 3)
    throw FormatError(fmt::format("{}: GGUF version {} is not supported, expected 2 or 3", path, version_));
  const auto tensor_count = in.read<uint64_t>("the tensor count");
  const auto kv_count = in.read<uint64_t>("the metadata count");
  // Each key/value takes at least 12 bytes and each tensor info at least 24: this bounds the
  // counts by the file size before anything is reserved.
  if (kv_count > in.remaining() / 12)
    throw FormatError(fmt::format("{}: metadata count {} cannot fit in the {} bytes left", path, kv_count, in.remaining()));
  if (tensor_count > in.remaining() / 24)
    throw FormatError(fmt::format("{}: tensor count {} cannot fit in the {} bytes left", path, tensor_count, in.remaining()));

  for (uint64_t i = 0; i < kv_count; ++i) {
    const std::string key(in.read_string(fmt::format("metadata key #{}", i)));
    Value value{in.read_value_type(key)};
    if (value.type == GgufValueType::kArray) {
      value.element_type = in.read_value_type(key);
      value.count = in.read<uint64_t>(key);
      value.offset = in.pos();
      in.skip_values(value.element_type, value.count, key, 1);
    } else {
      value.offset = in.pos();
      in.skip_values(value.type, 1, key, 0);
    }
    if (!metadata_.emplace(key, value).second)
      throw FormatError(fmt::format("{}: metadata key {} appears twice", path, key));
  }

  uint64_t alignment = kDefaultAlignment;
  if (auto a = get_uint("general.alignment")) {
    if (*a == 0 || (*a & (*a - 1)) != 0 || *a > (1u << 20))
      throw FormatError(fmt::format("{}: field general.alignment = {}, expected a power of two", path, *a));
    alignment = *a;
  }

  std::vector<uint64_t> offsets;  // relative to the data section, resolved once it is known
  tensors_.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    t.name = std::string(in.read_string(fmt::format("tensor #{} name", i)));
    const auto n_dims = in.read<uint32_t>(t.name);
    if (n_dims == 0 || n_dims > kMaxDims)
      throw FormatError(fmt::format("{}: tensor {} has {} dimensions, expected 1..{}", path, t.name, n_dims, kMaxDims));
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = in.read<uint64_t>(t.name);
      if (ne == 0 || __builtin_mul_overflow(elements, ne, &elements) || elements > (uint64_t{1} << 48))
        throw FormatError(fmt::format("{}: tensor {} dimension {} = {} is zero or absurdly large", path, t.name, d, ne));
      t.shape.push_back(ne);
    }
    const auto raw_type = in.read<uint32_t>(t.name);
    const auto traits = ggml_type_traits(raw_type);
    if (!traits)
      throw FormatError(fmt::format("{}: tensor {} has unknown ggml type {}", path, t.name, raw_type));
    t.type = static_cast<GgmlType>(raw_type);
    if (t.shape[0] % traits->block_elements != 0)
      throw FormatError(fmt::format("{}: tensor {} of type {} has a row of {} elements, expected a multiple of {}", path,
                                    t.name, traits->name, t.shape[0], traits->block_elements));
    t.num_bytes = elements / traits->block_elements * traits->block_bytes;
    offsets.push_back(in.read<uint64_t>(t.name));
    if (offsets.back() % alignment != 0)
      throw FormatError(fmt::format("{}: tensor {} data offset {} is not a multiple of the alignment {}", path, t.name,
                                    offsets.back(), alignment));
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      throw FormatError(fmt::format("{}: tensor {} appears twice", path, t.name));
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment after the tensor table.
  const uint64_t data_start = (in.pos() + alignment - 1) / alignment * alignment;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensorInfo& t = tensors_[i];
    const uint64_t begin = data_start + offsets[i];
    if (begin < data_start || begin > file_->size() || t.num_bytes > file_->size() - begin)
      throw FormatError(fmt::format("{}: tensor {} data [{}, {}) extends past the end of the file ({} bytes; truncated?)",
                                    path, t.name, begin, begin + t.num_bytes, file_->size()));
    t.data = file_->data() + begin;
  }
  // A tensor whose type or shape claims more bytes than were written for it runs into the next
  // tensor's data: the sizes implied by the table must tile the data section without overlap.
  std::vector<size_t> by_offset(tensors_.size());
  for (size_t i = 0; i < by_offset.size(); ++i) by_offset[i] = i;
  std::sort(by_offset.begin(), by_offset.end(), [&](size_t a, size_t b) { return offsets[a] < offsets[b]; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& prev = tensors_[by_offset[i - 1]];
    const GgufTensorInfo& next = tensors_[by_offset[i]];
    if (offsets[by_offset[i - 1]] + prev.num_bytes > offsets[by_offset[i]])
      throw FormatError(fmt::format("{}: tensor {} ({} {}, {} bytes) overlaps tensor {} that starts {} bytes after it "
                                    "(wrong type or shape for its data?)",
                                    path, prev.name, ggml_type_name(prev.type), fmt::join(prev.shape, "x"),
                                    prev.num_bytes, next.name, offsets[by_offset[i]] - offsets[by_offset[i - 1]]));
  }
}

const GgufTensorInfo* GgufReader::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufReader::Value* GgufReader::find_value(std::string_view key, GgufValueType expected_kind,
                                                std::string_view wanted) const {
  auto it = metadata_.find(std::string(key));
  if (it == metadata_.end()) return nullptr;
  const Value& v = it->second;
  const bool ok = expected_kind == GgufValueType::kArray ? v.type == GgufValueType::kArray : v.type != GgufValueType::kArray;
  if (!ok)
    throw FormatError(fmt::format("{}: metadata {} is {}, expected {}", path(), key,
                                  v.type == GgufValueType::kArray
                                      ? fmt::format("an array of {}", value_type_name(v.element_type))
                                      : std::string(value_type_name(v.type)),
                                  wanted));
  return &v;
}

namespace {
// Reads one integer of any GGUF integer type as int64 (uint64 above INT64_MAX saturates).
int64_t load_integer(const MappedFile& f, GgufValueType type, size_t offset) {
  switch (type) {
    case GgufValueType::kUint8: return load<uint8_t>(f, offset);
    case GgufValueType::kInt8: return load<int8_t>(f, offset);
    case GgufValueType::kUint16: return load<uint16_t>(f, offset);
    case GgufValueType::kInt16: return load<int16_t>(f, offset);
    case GgufValueType::kUint32: return load<uint32_t>(f, offset);
    case GgufValueType::kInt32: return load<int32_t>(f, offset);
    case GgufValueType::kUint64: {
      const auto v = load<uint64_t>(f, offset);
      return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
    }
    case GgufValueType::kInt64: return load<int64_t>(f, offset);
    default: return 0;
  }
}
}  // namespace

std::optional<uint64_t> GgufReader::get_uint(std::string_view key) const {
  const Value* v = find_value(key, GgufValueType::kUint32, "an unsigned integer");
  if (v == nullptr) return std::nullopt;
  if (!is_integer(v->type))
    throw FormatError(fmt::format("{}: metadata {} is {}, expected an unsigned integer", path(), key, value_type_name(v->type)));
  const int64_t value = load_integer(*file_, v->type, v->offset);
  if (value < 0)
    throw FormatError(fmt::format("{}: metadata {} = {}, expected a non-negative integer", path(), key, value));
  return static_cast<uint64_t>(value);
}

std::optional<double> GgufReader::get_float(std::string_view key) const {
  const Value* v = find_value(key, GgufValueType::kFloat32, "a number");
  if (v == nullptr) return std::nullopt;
  if (v->type == GgufValueType::kFloat32) return load<float>(*file_, v->offset);
  if (v->type == GgufValueType::kFloat64) return load<double>(*file_, v->offset);
  if (is_integer(v->type)) return static_cast<double>(load_integer(*file_, v->type, v->offset));
  throw FormatError(fmt::format("{}: metadata {} is {}, expected a number", path(), key, value_type_name(v->type)));
}

std::optional<std::string> GgufReader::get_string(std::string_view key) const {
  const Value* v = find_value(key, GgufValueType::kString, "a string");
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kString)
    throw FormatError(fmt::format("{}: metadata {} is {}, expected a string", path(), key, value_type_name(v->type)));
  const auto len = load<uint64_t>(*file_, v->offset);
  return std::string(reinterpret_cast<const char*>(file_->data() + v->offset + 8), static_cast<size_t>(len));
}

std::optional<std::vector<std::string>> GgufReader::get_string_array(std::string_view key) const {
  const Value* v = find_value(key, GgufValueType::kArray, "an array of strings");
  if (v == nullptr) return std::nullopt;
  if (v->element_type != GgufValueType::kString)
    throw FormatError(fmt::format("{}: metadata {} is an array of {}, expected an array of strings", path(), key,
                                  value_type_name(v->element_type)));
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(v->count));
  size_t offset = v->offset;  // bounds were checked when the file was parsed
  for (uint64_t i = 0; i < v->count; ++i) {
    const auto len = static_cast<size_t>(load<uint64_t>(*file_, offset));
    out.emplace_back(reinterpret_cast<const char*>(file_->data() + offset + 8), len);
    offset += 8 + len;
  }
  return out;
}

std::optional<std::vector<float>> GgufReader::get_float_array(std::string_view key) const {
  const Value* v = find_value(key, GgufValueType::kArray, "an array of numbers");
  if (v == nullptr) return std::nullopt;
  if (v->element_type != GgufValueType::kFloat32 && v->element_type != GgufValueType::kFloat64)
    throw FormatError(fmt::format("{}: metadata {} is an array of {}, expected an array of float32", path(), key,
                                  value_type_name(v->element_type)));
  std::vector<float> out(static_cast<size_t>(v->count));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = v->element_type == GgufValueType::kFloat32 ? load<float>(*file_, v->offset + 4 * i)
                                                        : static_cast<float>(load<double>(*file_, v->offset + 8 * i));
  return out;
}

std::optional<std::vector<int64_t>> GgufReader::get_int_array(std::string_view key) const {
  const Value* v = find_value(key, GgufValueType::kArray, "an array of integers");
  if (v == nullptr) return std::nullopt;
  if (!is_integer(v->element_type))
    throw FormatError(fmt::format("{}: metadata {} is an array of {}, expected an array of integers", path(), key,
                                  value_type_name(v->element_type)));
  const uint64_t size = fixed_value_bytes(v->element_type);
  std::vector<int64_t> out(static_cast<size_t>(v->count));
  for (size_t i = 0; i < out.size(); ++i) out[i] = load_integer(*file_, v->element_type, v->offset + size * i);
  return out;
}

}  // namespace prunekv
