#pragma once
// A weight tensor as the file stores it: its ggml type and where its bytes start (a memory map
// or an owned buffer kept alive by Model::storage). The shape comes from the model config;
// row r of an [out][in] matrix starts at data + r * ggml_row_bytes(type, in).
#include <cstddef>
#include <cstdint>

#include "common/check.h"
#include "model/ggml_type.h"

namespace prunekv {

struct WeightView {
  GgmlType type = GgmlType::kF32;
  const void* data = nullptr;

  WeightView() = default;
  // An fp32 tensor (llama2.c checkpoints, synthetic models, F32 GGUF).
  WeightView(const float* f32_data) : type(GgmlType::kF32), data(f32_data) {}  // NOLINT: implicit on purpose
  WeightView(GgmlType t, const void* d) : type(t), data(d) {}

  bool is_f32() const { return type == GgmlType::kF32; }
  // The fp32 values; only for an F32 tensor (CHECKs).
  const float* f32() const {
    PKV_CHECK(is_f32(), "weight of type {} read as F32", ggml_type_name(type));
    return static_cast<const float*>(data);
  }
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(data); }
  const uint8_t* row(size_t r, size_t cols) const { return bytes() + r * ggml_row_bytes(type, cols); }

  friend bool operator==(const WeightView&, const WeightView&) = default;
};

}  // namespace prunekv
