#include "tests/testing/quantize.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include "common/check.h"

namespace prunekv::testing {

namespace {

template <class T>
void append(std::vector<uint8_t>& out, const T& value) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

}  // namespace

// The compiler's own half type rounds to nearest even: independent of the loader's conversion.
uint16_t float_to_half(float f) { return std::bit_cast<uint16_t>(static_cast<_Float16>(f)); }

uint16_t float_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if (std::isnan(f)) return static_cast<uint16_t>((bits >> 16) | 0x40);
  const uint32_t rounded = bits + 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(rounded >> 16);
}

std::vector<uint8_t> random_blocks(GgmlType type, size_t num_blocks, uint64_t seed) {
  const GgmlTypeTraits t = ggml_type_traits(type);
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> bytes(num_blocks * t.block_bytes);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  for (size_t i = 0; i < num_blocks; ++i) {
    uint8_t* block = bytes.data() + i * t.block_bytes;
    auto set_half = [&](size_t at) {
      const uint16_t h = (i % 7 == 3) ? static_cast<uint16_t>(rng() & 0x83FF) : float_to_half(scale(rng));
      std::memcpy(block + at, &h, 2);
    };
    switch (type) {
      case GgmlType::kQ8_0: case GgmlType::kQ4_0: case GgmlType::kQ5_0: set_half(0); break;
      case GgmlType::kQ4_K: set_half(0); set_half(2); break;
      case GgmlType::kQ6_K: set_half(208); break;
      default: PKV_CHECK(false, "random_blocks of {}", ggml_type_name(type));
    }
  }
  return bytes;
}

bool fits_rows(GgmlType type, size_t cols) { return cols % ggml_type_traits(type).block_elements == 0; }

std::vector<uint8_t> quantize(GgmlType type, std::span<const float> values) {
  PKV_CHECK(fits_rows(type, values.size()), "{} values of {}", values.size(), ggml_type_name(type));
  std::vector<uint8_t> out;
  switch (type) {
    case GgmlType::kF32:
      for (const float v : values) append(out, v);
      break;
    case GgmlType::kF16:
      for (const float v : values) append(out, float_to_half(v));
      break;
    case GgmlType::kBF16:
      for (const float v : values) append(out, float_to_bf16(v));
      break;
    case GgmlType::kQ8_0:
      for (size_t b = 0; b < values.size(); b += 32) {
        float amax = 0;
        for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(values[b + j]));
        const float d = amax / 127.0f;
        append(out, float_to_half(d));
        for (size_t j = 0; j < 32; ++j)
          append(out, static_cast<int8_t>(d == 0 ? 0 : std::lround(values[b + j] / d)));
      }
      break;
    case GgmlType::kQ4_0:
      for (size_t b = 0; b < values.size(); b += 32) {
        float extreme = 0;  // signed: the largest magnitude maps to -8, the far end of the range
        for (size_t j = 0; j < 32; ++j)
          if (std::fabs(values[b + j]) > std::fabs(extreme)) extreme = values[b + j];
        const float d = extreme / -8.0f;
        append(out, float_to_half(d));
        auto level = [&](float v) {
          return d == 0 ? 8 : static_cast<int>(std::clamp(std::lround(v / d) + 8, 0L, 15L));
        };
        for (size_t j = 0; j < 16; ++j)
          append(out, static_cast<uint8_t>(level(values[b + j]) | (level(values[b + 16 + j]) << 4)));
      }
      break;
    default: PKV_CHECK(false, "no test quantizer for {}", ggml_type_name(type));
  }
  return out;
}

}  // namespace prunekv::testing
