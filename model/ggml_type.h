#pragma once
// ggml's tensor types (ids from ggml's enum ggml_type) and their storage: a row of a tensor is a
// whole number of blocks, each `block_elements` values in `block_bytes` bytes (1 and the element
// size for the plain types).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace prunekv {

enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kBF16 = 30,
};

struct GgmlTypeTraits {
  uint64_t block_elements;  // elements per block (1 for plain types)
  uint64_t block_bytes;
  std::string_view name;
};

// nullopt for an id ggml does not define (or one this table does not know).
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t raw_type);
GgmlTypeTraits ggml_type_traits(GgmlType type);  // a known type: CHECKs
std::string_view ggml_type_name(GgmlType type);   // "unknown" for an unknown id

// Bytes of one row of `cols` elements (cols a multiple of the block size: CHECKed).
size_t ggml_row_bytes(GgmlType type, size_t cols);

}  // namespace prunekv
