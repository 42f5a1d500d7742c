// The quantized kernels for AVX2 + FMA + F16C (8 fp32 lanes), built with a target attribute
// so the library runs on CPUs without them.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "model/dequantize.h"
#include "model/half.h"
#include "model/quant_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace prunekv::detail {
namespace {

struct Simd {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V load_half(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static V load_bf16(const uint8_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // 16 signed bytes into two vectors.
  static void int8x16_to_float(__m128i q, V* w) {
    w[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    w[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
  }
};

#include "model/quant_kernels_simd.h"

}  // namespace

const QuantKernels* quant_kernels_avx2() {
  static const QuantKernels kernels{"avx2", dot_rows, dequantize_rows, dequantize_panels,
                                    quantize_activations, int8_dot_rows};
  return &kernels;
}

}  // namespace prunekv::detail

#pragma GCC pop_options
