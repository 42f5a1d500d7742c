#pragma once
// IEEE binary16 <-> float for fp16 KV storage: round to nearest even on the way down, exact on
// the way up. F16C does eight at a time where the build has it (-march=native on AVX2 CPUs).
#include <cstddef>
#include <cstdint>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace prunekv {

inline void floats_to_halves(uint16_t* dst, const float* src, size_t n) {
  size_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
  for (; i < n; ++i) {
    const _Float16 h = static_cast<_Float16>(src[i]);
    __builtin_memcpy(dst + i, &h, sizeof h);
  }
#endif
}

inline void halves_to_floats(float* dst, const uint16_t* src, size_t n) {
  size_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
#else
  for (; i < n; ++i) {
    _Float16 h;
    __builtin_memcpy(&h, src + i, sizeof h);
    dst[i] = static_cast<float>(h);
  }
#endif
}

}  // namespace prunekv
