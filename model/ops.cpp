#include "model/ops.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "model/simd_exp.h"

namespace prunekv {

void rmsnorm(float* out, const float* x, const float* weight, size_t dim, float eps) {
  // dot() rather than llama2.c's one serial chain of dim dependent adds (2% of a prefill).
  const float ss = 1.0f / std::sqrt(dot(x, x, dim) / static_cast<float>(dim) + eps);
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
#if defined(__AVX2__) && defined(__FMA__)
  // llama2.c's expression, g * (1 / (1 + exp(-g))) * up, 8 at a time with the vector exp; the
  // tail goes through the same vector path so every element is computed alike.
  auto silu_times_up = [](__m256 g, __m256 u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = simd::exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_mul_ps(g, _mm256_div_ps(one, _mm256_add_ps(one, e))), u);
  };
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(gate + i, silu_times_up(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    float g[8] = {}, u[8] = {};
    std::copy(gate + i, gate + n, g);
    std::copy(up + i, up + n, u);
    _mm256_storeu_ps(g, silu_times_up(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
    std::copy(g, g + (n - i), gate + i);
  }
#else
  for (size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g * (1.0f / (1.0f + std::exp(-g))) * up[i];
  }
#endif
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

void log_softmax(const float* x, float* out, size_t n) {
  PKV_DCHECK(n > 0);
  const float max_value = *std::max_element(x, x + n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - double(max_value));
  const double log_sum = std::log(sum);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(double(x[i]) - double(max_value) - log_sum);
}

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

}  // namespace prunekv
