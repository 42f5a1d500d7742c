#include "model/quant_int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "model/dequantize.h"
#include "model/half.h"

namespace prunekv {

namespace {

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return half_to_float(h);
}

// One weight block as integers: element k is scale[k] * q[k] - offset[k] (scales and offsets
// exact in double). q is what the vector kernels multiply: signed for the 32-value types, the
// unsigned 4- and 6-bit codes for Q4_K and Q6_K (whose offsets, dmin * m and 32 * scale, the
// kernels apply through the activations' sums).
void integer_block(GgmlType type, const uint8_t* block, int* q, double* scale, double* offset) {
  switch (type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0: {
      const double d = half_at(block);
      uint32_t qh = 0;
      if (type == GgmlType::kQ5_0) std::memcpy(&qh, block + 2, sizeof qh);
      for (size_t i = 0; i < kQBlock; ++i) {
        if (type == GgmlType::kQ8_0) {
          q[i] = static_cast<int8_t>(block[2 + i]);
        } else {
          const uint8_t* qs = block + (type == GgmlType::kQ4_0 ? 2 : 6);
          const int nibble = i < kQBlock / 2 ? qs[i] & 0x0F : qs[i - kQBlock / 2] >> 4;
          q[i] =
              type == GgmlType::kQ4_0 ? nibble - 8 : (nibble | static_cast<int>(((qh >> i) & 1) << 4)) - 16;
        }
        scale[i] = d;
        offset[i] = 0.0;
      }
      return;
    }
    case GgmlType::kQ4_K: {
      const double d = half_at(block), dmin = half_at(block + 2);
      for (size_t j = 0; j < 8; ++j) {  // sub-block j: byte 32 (j / 2) + i, low nibble for even j
        uint8_t sc, m;
        q4_k_scale_min(block + 4, j, &sc, &m);
        for (size_t i = 0; i < 32; ++i) {
          const uint8_t byte = block[16 + 32 * (j / 2) + i];
          q[32 * j + i] = j % 2 == 0 ? byte & 0x0F : byte >> 4;
          scale[32 * j + i] = d * sc;
          offset[32 * j + i] = dmin * m;
        }
      }
      return;
    }
    case GgmlType::kQ6_K: {
      const auto* sc = reinterpret_cast<const int8_t*>(block + 192);
      const double d = half_at(block + 208);
      for (size_t k = 0; k < kKBlock; ++k) {
        // Element k: half h (128 values) of groups g (32 values); ql nibble and 2 bits of qh.
        const size_t h = k / 128, g = (k % 128) / 32, i = k % 32;
        const uint8_t ql = block[64 * h + 32 * (g % 2) + i], qh = block[128 + 32 * h + i];
        q[k] = (g < 2 ? ql & 0x0F : ql >> 4) | (((qh >> (2 * g)) & 3) << 4);
        scale[k] = d * sc[k / 16];
        offset[k] = 32 * scale[k];
      }
      return;
    }
    default:
      PKV_CHECK(false, "no int8 product for type {}", ggml_type_name(type));
  }
}

}  // namespace

size_t int8_activation_block(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K:
      return kKBlock;
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0:
      return kQBlock;
    default:
      return 0;
  }
}

void Int8Activations::resize(size_t block_, size_t cols_, size_t n_) {
  PKV_CHECK(block_ % 16 == 0 && block_ > 0 && cols_ % block_ == 0, "{} columns in blocks of {}", cols_,
            block_);
  block = block_, cols = cols_, n = n_;
  if (q.size() < n * cols) q.resize(n * cols);
  if (d.size() < n * cols / block) d.resize(n * cols / block);
  if (sums.size() < n * cols / 16) sums.resize(n * cols / 16);
}

void quantize_activations_reference(const float* x, size_t ldx, Int8Activations& a) {
  for (size_t t = 0; t < a.n; ++t) {
    const float* xt = x + t * ldx;
    int8_t* q = a.q.data() + t * a.cols;
    for (size_t b = 0; b < a.cols / a.block; ++b) {
      float amax = 0.0f;
      for (size_t k = b * a.block; k < (b + 1) * a.block; ++k) amax = std::max(amax, std::fabs(xt[k]));
      a.d[t * (a.cols / a.block) + b] = amax / 127.0f;
      const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
      for (size_t k = b * a.block; k < (b + 1) * a.block; ++k)
        q[k] = static_cast<int8_t>(std::clamp(std::nearbyint(xt[k] * id), -127.0f, 127.0f));
    }
  }
  int8_activation_sums(a);
}

void int8_activation_sums(Int8Activations& a) {
  for (size_t s = 0; s < a.n * a.cols / 16; ++s) {
    int sum = 0;
    for (size_t k = 16 * s; k < 16 * s + 16; ++k) sum += a.q[k];
    a.sums[s] = static_cast<int16_t>(sum);
  }
}

double int8_dot_reference(GgmlType type, const uint8_t* row, const Int8Activations& a, size_t t,
                          double* magnitude) {
  const GgmlTypeTraits traits = ggml_type_traits(type);
  PKV_CHECK(int8_activation_block(type) == a.block && a.cols % traits.block_elements == 0,
            "{} against blocks of {}", traits.name, a.block);
  const int8_t* xq = a.q_of(t);
  const float* xd = a.d_of(t);
  std::vector<int> q(traits.block_elements);
  std::vector<double> scale(traits.block_elements), offset(traits.block_elements);
  double sum = 0.0, mag = 0.0;
  for (size_t b = 0; b < a.cols / traits.block_elements; ++b) {
    integer_block(type, row + b * traits.block_bytes, q.data(), scale.data(), offset.data());
    for (size_t i = 0; i < traits.block_elements; ++i) {
      const size_t k = b * traits.block_elements + i;
      const double x = double{xd[k / a.block]} * xq[k];
      sum += (scale[i] * q[i] - offset[i]) * x;
      mag += (std::fabs(scale[i] * q[i]) + std::fabs(offset[i])) * std::fabs(x);
    }
  }
  if (magnitude != nullptr) *magnitude = mag;
  return sum;
}

}  // namespace prunekv
