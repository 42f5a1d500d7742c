#include "model/ops.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>

#include "common/check.h"

namespace prunekv {

void rmsnorm(float* out, const float* x, const float* weight, size_t dim, float eps) {
  float ss = 0.0f;
  for (size_t i = 0; i < dim; ++i) ss += x[i] * x[i];
  ss = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
  for (size_t i = 0; i < dim; ++i) out[i] = weight[i] * (ss * x[i]);
}

void rope_angles(float* cos_out, float* sin_out, Pos pos, size_t head_dim, float theta) {
  // Same float expressions as llama2.c run.c, which computes freq from the even index 2k.
  for (size_t k = 0; k < head_dim / 2; ++k) {
    const float freq = 1.0f / std::pow(theta, static_cast<float>(2 * k) / static_cast<float>(head_dim));
    const float angle = static_cast<float>(pos) * freq;
    cos_out[k] = std::cos(angle);
    sin_out[k] = std::sin(angle);
  }
}

void rope(float* vec, size_t num_heads, size_t head_dim, const float* cos, const float* sin,
          RopeLayout layout) {
  const size_t half = head_dim / 2;
  // Which element pairs with which is the only difference between the two layouts.
  const size_t pair_stride = layout == RopeLayout::kAdjacentPairs ? 2 : 1;
  const size_t partner_offset = layout == RopeLayout::kAdjacentPairs ? 1 : half;
  for (size_t h = 0; h < num_heads; ++h) {
    float* head = vec + h * head_dim;
    for (size_t k = 0; k < half; ++k) {
      float* a = head + k * pair_stride;
      float* b = a + partner_offset;
      const float v0 = *a;
      const float v1 = *b;
      *a = v0 * cos[k] - v1 * sin[k];
      *b = v0 * sin[k] + v1 * cos[k];
    }
  }
}

void swiglu(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g * (1.0f / (1.0f + std::exp(-g))) * up[i];
  }
}

void softmax(float* x, size_t n) {
  PKV_DCHECK(n > 0);
  const float max_value = *std::max_element(x, x + n);
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  // Divides like llama2.c run.c rather than multiplying by 1/sum: one rounding, not two.
  for (size_t i = 0; i < n; ++i) x[i] /= sum;
}

namespace {

#if defined(__AVX2__) && defined(__FMA__)
constexpr bool kHaveAvx2 = true;

// Sum of the 8 lanes in a fixed order, the same for every output element.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[c][r] for R weight rows x C tokens: 8-lane FMA accumulation over k < in8, the fixed lane
// reduction, then the scalar tail k in [in8, in). Each element goes through the same operations
// whatever block it falls in, so results never depend on n, R, C or how rows are split.
template <int R, int C>
inline void dot_block(float* y, size_t ldy, const float* x, const float* w, size_t in, size_t in8) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  for (size_t k = 0; k < in8; k += 8) {
    __m256 xv[C];
    for (int c = 0; c < C; ++c) xv[c] = _mm256_loadu_ps(x + c * in + k);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_loadu_ps(w + r * in + k);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float sum = hsum(acc[r][c]);
      for (size_t k = in8; k < in; ++k) sum += w[r * in + k] * x[c * in + k];
      y[c * ldy + r] = sum;
    }
  }
}
#else
constexpr bool kHaveAvx2 = false;
#endif

}  // namespace

void matmul_rows_reference(float* y, const float* x, const float* w, size_t n, size_t in, size_t out,
                           size_t row_begin, size_t row_end) {
  for (size_t t = 0; t < n; ++t) {
    for (size_t o = row_begin; o < row_end; ++o) {
      float sum = 0.0f;
      for (size_t k = 0; k < in; ++k) sum += w[o * in + k] * x[t * in + k];
      y[t * out + o] = sum;
    }
  }
}

void matmul_rows(float* y, const float* x, const float* w, size_t n, size_t in, size_t out,
                 size_t row_begin, size_t row_end) {
  PKV_DCHECK(row_begin <= row_end && row_end <= out);
  if (row_begin == row_end || n == 0) return;
  if constexpr (!kHaveAvx2) {
    matmul_rows_reference(y, x, w, n, in, out, row_begin, row_end);
  } else {
#if defined(__AVX2__) && defined(__FMA__)
    // Tokens in blocks whose x rows stay in L2; inside a block, 4 weight rows (in L1) meet 3
    // tokens at a time: 12 accumulators, 7 loads per 12 FMAs.
    constexpr size_t kTokenBlock = 48;
    const size_t in8 = in / 8 * 8;
    for (size_t t0 = 0; t0 < n; t0 += kTokenBlock) {
      const size_t t1 = std::min(n, t0 + kTokenBlock);
      size_t r = row_begin;
      for (; r + 4 <= row_end; r += 4) {
        const float* wr = w + r * in;
        size_t t = t0;
        for (; t + 3 <= t1; t += 3) dot_block<4, 3>(y + t * out + r, out, x + t * in, wr, in, in8);
        for (; t < t1; ++t) dot_block<4, 1>(y + t * out + r, out, x + t * in, wr, in, in8);
      }
      for (; r < row_end; ++r) {
        const float* wr = w + r * in;
        size_t t = t0;
        for (; t + 3 <= t1; t += 3) dot_block<1, 3>(y + t * out + r, out, x + t * in, wr, in, in8);
        for (; t < t1; ++t) dot_block<1, 1>(y + t * out + r, out, x + t * in, wr, in, in8);
      }
    }
#endif
  }
}

}  // namespace prunekv
