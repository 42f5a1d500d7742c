#include "model/dequantize.h"

#include <cstring>

#include "common/check.h"
#include "model/half.h"

namespace prunekv {

namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

bool is_supported_weight_type(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16: case GgmlType::kQ8_0: case GgmlType::kQ4_0:
    case GgmlType::kQ5_0: case GgmlType::kQ4_K: case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

const char* supported_weight_types() { return "F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K"; }

void dequantize_q8_0_block(const uint8_t* block, float* out) {
  const float d = half_to_float(load_u16(block));
  for (size_t i = 0; i < kQBlock; ++i) out[i] = d * static_cast<float>(static_cast<int8_t>(block[2 + i]));
}

void dequantize_q4_0_block(const uint8_t* block, float* out) {
  const float d = half_to_float(load_u16(block));
  const uint8_t* qs = block + 2;
  for (size_t i = 0; i < kQBlock / 2; ++i) {
    out[i] = d * static_cast<float>((qs[i] & 0x0F) - 8);
    out[i + kQBlock / 2] = d * static_cast<float>((qs[i] >> 4) - 8);
  }
}

void dequantize_q5_0_block(const uint8_t* block, float* out) {
  const float d = half_to_float(load_u16(block));
  uint32_t qh;
  std::memcpy(&qh, block + 2, sizeof qh);
  const uint8_t* qs = block + 6;
  for (size_t i = 0; i < kQBlock / 2; ++i) {
    const int lo = (qs[i] & 0x0F) | static_cast<int>(((qh >> i) & 1) << 4);
    const int hi = (qs[i] >> 4) | static_cast<int>(((qh >> (i + kQBlock / 2)) & 1) << 4);
    out[i] = d * static_cast<float>(lo - 16);
    out[i + kQBlock / 2] = d * static_cast<float>(hi - 16);
  }
}

void dequantize_q4_k_block(const uint8_t* block, float* out) {
  const float d = half_to_float(load_u16(block));
  const float dmin = half_to_float(load_u16(block + 2));
  const uint8_t* scales = block + 4;
  const uint8_t* qs = block + 16;
  for (size_t chunk = 0; chunk < 4; ++chunk) {  // 32 bytes: sub-blocks 2 chunk (low), 2 chunk + 1 (high)
    uint8_t sc_lo, m_lo, sc_hi, m_hi;
    q4_k_scale_min(scales, 2 * chunk, &sc_lo, &m_lo);
    q4_k_scale_min(scales, 2 * chunk + 1, &sc_hi, &m_hi);
    const float d_lo = d * static_cast<float>(sc_lo), min_lo = dmin * static_cast<float>(m_lo);
    const float d_hi = d * static_cast<float>(sc_hi), min_hi = dmin * static_cast<float>(m_hi);
    const uint8_t* q = qs + 32 * chunk;
    float* y = out + 64 * chunk;
    for (size_t i = 0; i < 32; ++i) y[i] = d_lo * static_cast<float>(q[i] & 0x0F) - min_lo;
    for (size_t i = 0; i < 32; ++i) y[32 + i] = d_hi * static_cast<float>(q[i] >> 4) - min_hi;
  }
}

// Each half of 128 values uses 64 bytes of ql, 32 of qh and 8 scales. For i < 32, byte ql[i]
// holds the low 4 bits of values i (low nibble) and 64 + i (high nibble), ql[32 + i] those of
// 32 + i and 96 + i; qh[i] holds the top 2 bits of i, 32 + i, 64 + i, 96 + i in bit pairs 0, 2,
// 4, 6. Value v uses scale v / 16.
void dequantize_q6_k_block(const uint8_t* block, float* out) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(block + 192);
  const float d = half_to_float(load_u16(block + 208));
  for (size_t half = 0; half < 2; ++half) {
    for (size_t i = 0; i < 32; ++i) {
      const int q0 = ((ql[i] & 0x0F) | (((qh[i] >> 0) & 3) << 4)) - 32;
      const int q1 = ((ql[32 + i] & 0x0F) | (((qh[i] >> 2) & 3) << 4)) - 32;
      const int q2 = ((ql[i] >> 4) | (((qh[i] >> 4) & 3) << 4)) - 32;
      const int q3 = ((ql[32 + i] >> 4) | (((qh[i] >> 6) & 3) << 4)) - 32;
      const size_t s = i / 16;
      out[i] = d * static_cast<float>(sc[s]) * static_cast<float>(q0);
      out[32 + i] = d * static_cast<float>(sc[s + 2]) * static_cast<float>(q1);
      out[64 + i] = d * static_cast<float>(sc[s + 4]) * static_cast<float>(q2);
      out[96 + i] = d * static_cast<float>(sc[s + 6]) * static_cast<float>(q3);
    }
    ql += 64;
    qh += 32;
    sc += 8;
    out += 128;
  }
}

void dequantize_row(GgmlType type, const uint8_t* row, float* out, size_t n) {
  switch (type) {
    case GgmlType::kF32: std::memcpy(out, row, n * sizeof(float)); return;
    case GgmlType::kF16:
      for (size_t i = 0; i < n; ++i) out[i] = half_to_float(load_u16(row + 2 * i));
      return;
    case GgmlType::kBF16:
      for (size_t i = 0; i < n; ++i) out[i] = bf16_to_float(load_u16(row + 2 * i));
      return;
    default: break;
  }
  const GgmlTypeTraits traits = ggml_type_traits(type);
  PKV_CHECK(n % traits.block_elements == 0, "{} elements of {}", n, traits.name);
  void (*block_fn)(const uint8_t*, float*) = nullptr;
  switch (type) {
    case GgmlType::kQ8_0: block_fn = dequantize_q8_0_block; break;
    case GgmlType::kQ4_0: block_fn = dequantize_q4_0_block; break;
    case GgmlType::kQ5_0: block_fn = dequantize_q5_0_block; break;
    case GgmlType::kQ4_K: block_fn = dequantize_q4_k_block; break;
    case GgmlType::kQ6_K: block_fn = dequantize_q6_k_block; break;
    default: PKV_CHECK(false, "dequantize_row: unsupported type {}", traits.name);
  }
  for (size_t b = 0; b < n / traits.block_elements; ++b)
    block_fn(row + b * traits.block_bytes, out + b * traits.block_elements);
}

}  // namespace prunekv
