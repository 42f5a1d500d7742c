#include "model/ggml_type.h"

#include "common/check.h"

namespace prunekv {

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t raw_type) {
  switch (static_cast<GgmlType>(raw_type)) {
    case GgmlType::kF32: return GgmlTypeTraits{1, 4, "F32"};
    case GgmlType::kF16: return GgmlTypeTraits{1, 2, "F16"};
    case GgmlType::kQ4_0: return GgmlTypeTraits{32, 18, "Q4_0"};
    case GgmlType::kQ4_1: return GgmlTypeTraits{32, 20, "Q4_1"};
    case GgmlType::kQ5_0: return GgmlTypeTraits{32, 22, "Q5_0"};
    case GgmlType::kQ5_1: return GgmlTypeTraits{32, 24, "Q5_1"};
    case GgmlType::kQ8_0: return GgmlTypeTraits{32, 34, "Q8_0"};
    case GgmlType::kQ2_K: return GgmlTypeTraits{256, 84, "Q2_K"};
    case GgmlType::kQ3_K: return GgmlTypeTraits{256, 110, "Q3_K"};
    case GgmlType::kQ4_K: return GgmlTypeTraits{256, 144, "Q4_K"};
    case GgmlType::kQ5_K: return GgmlTypeTraits{256, 176, "Q5_K"};
    case GgmlType::kQ6_K: return GgmlTypeTraits{256, 210, "Q6_K"};
    case GgmlType::kQ8_K: return GgmlTypeTraits{256, 292, "Q8_K"};
    case GgmlType::kI8: return GgmlTypeTraits{1, 1, "I8"};
    case GgmlType::kI16: return GgmlTypeTraits{1, 2, "I16"};
    case GgmlType::kI32: return GgmlTypeTraits{1, 4, "I32"};
    case GgmlType::kI64: return GgmlTypeTraits{1, 8, "I64"};
    case GgmlType::kF64: return GgmlTypeTraits{1, 8, "F64"};
    case GgmlType::kBF16: return GgmlTypeTraits{1, 2, "BF16"};
  }
  return std::nullopt;
}

GgmlTypeTraits ggml_type_traits(GgmlType type) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  PKV_CHECK(traits.has_value(), "ggml type {} unknown", static_cast<uint32_t>(type));
  return *traits;
}

std::string_view ggml_type_name(GgmlType type) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  return traits ? traits->name : "unknown";
}

size_t ggml_row_bytes(GgmlType type, size_t cols) {
  const GgmlTypeTraits traits = ggml_type_traits(type);
  PKV_CHECK(cols % traits.block_elements == 0, "a {} row of {} elements", traits.name, cols);
  return cols / traits.block_elements * traits.block_bytes;
}

}  // namespace prunekv
