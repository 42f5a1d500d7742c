// The body of the quantized kernels, written once over a vector type `Simd` that the including
// file defines (quant_kernels_avx2.cpp: 8 lanes; quant_kernels_avx512.cpp: 16). Included inside
// the includer's `#pragma GCC target` region and anonymous namespace, after every other header,
// so each instruction set gets its own internal copy. No #pragma once: on purpose.

constexpr int kLanes = Simd::kLanes;
constexpr int kVecs = 32 / kLanes;  // vectors per group of 32 elements
using V = typename Simd::V;

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);  // exact for every half, subnormals included
}

// 32 signed bytes as kVecs vectors of fp32, element order kept.
inline void bytes_to_float(__m256i q, V* w) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  Simd::int8x16_to_float(lo, w);
  Simd::int8x16_to_float(hi, w + kVecs / 2);
}

// The same, times the block's F16 scale d: the 32-element types' (Q8_0, Q4_0, Q5_0) values.
inline void scaled_bytes_to_float(__m256i q, float d, V* w) {
  bytes_to_float(q, w);
  const V dv = Simd::set1(d);
  #pragma GCC unroll 4
  for (int j = 0; j < kVecs; ++j) w[j] = Simd::mul(dv, w[j]);
}

inline __m256i low_nibbles(__m256i q) { return _mm256_and_si256(q, _mm256_set1_epi8(0x0F)); }
inline __m256i high_nibbles(__m256i q) { return _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0F)); }

template <GgmlType T>
constexpr size_t kQBlockBytes = T == GgmlType::kQ8_0   ? kQ8_0BlockBytes
                                : T == GgmlType::kQ4_0 ? kQ4_0BlockBytes
                                                       : kQ5_0BlockBytes;

// The 32 signed codes of block g of a Q8_0 / Q4_0 / Q5_0 row (the values are d times them).
template <GgmlType T>
inline __m256i block_codes(const uint8_t* row, size_t g) {
  if constexpr (T == GgmlType::kQ8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + kQ8_0BlockBytes * g + 2));
  } else if constexpr (T == GgmlType::kQ4_0) {
    const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + kQ4_0BlockBytes * g + 2));
    const __m256i q = _mm256_set_m128i(_mm_srli_epi16(qs, 4), qs);  // elements 16.. in the high nibbles
    return _mm256_sub_epi8(low_nibbles(q), _mm256_set1_epi8(8));
  } else {
    static_assert(T == GgmlType::kQ5_0);
    const uint8_t* block = row + kQ5_0BlockBytes * g;
    const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 6));
    const __m256i q = _mm256_set_m128i(_mm_srli_epi16(qs, 4), qs);  // elements 16.. in the high nibbles
    // Bit i of qh into byte i: byte i gets qh's byte i / 8, then tests bit i % 8.
    uint32_t qh;
    std::memcpy(&qh, block + 2, sizeof qh);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(qh)),
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    const __m256i top = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
    return _mm256_sub_epi8(_mm256_or_si256(low_nibbles(q), top), _mm256_set1_epi8(16));
  }
}

// The fp32 values of group g (elements 32g .. 32g + 31) of a row of a type with 32-element
// chunks (plain types, Q8_0, Q4_0, Q5_0).
template <GgmlType T>
inline void decode_group(const uint8_t* row, size_t g, V* w) {
  if constexpr (T == GgmlType::kF32) {
    #pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) w[j] = Simd::loadu(reinterpret_cast<const float*>(row) + 32 * g + j * kLanes);
  } else if constexpr (T == GgmlType::kF16) {
    #pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) w[j] = Simd::load_half(row + 2 * (32 * g + j * kLanes));
  } else if constexpr (T == GgmlType::kBF16) {
    #pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) w[j] = Simd::load_bf16(row + 2 * (32 * g + j * kLanes));
  } else {
    scaled_bytes_to_float(block_codes<T>(row, g), half_at(row + kQBlockBytes<T> * g), w);
  }
}

// Rows are decoded in chunks: one block of a K-quant (256 elements, 8 groups of 32 sharing the
// block's scales, which are unpacked once per chunk), one group of 32 elements otherwise.
template <GgmlType T>
constexpr bool kIsKQuant = T == GgmlType::kQ4_K || T == GgmlType::kQ6_K;
template <GgmlType T>
constexpr size_t kChunk = kIsKQuant<T> ? 256 : 32;

// A K-quant block's sub-block factors, the same products the scalar dequantizers form:
// Q4_K scale[j] = d * sc_j and min[j] = dmin * m_j (j < 8); Q6_K scale[i] = d * scales[i] (i < 16).
struct ChunkScales {
  float scale[16];
  float min[8];
};

template <GgmlType T>
inline void chunk_scales(const uint8_t* row, size_t c, ChunkScales& s) {
  if constexpr (T == GgmlType::kQ4_K) {
    const uint8_t* block = row + 144 * c;
    const float d = half_at(block), dmin = half_at(block + 2);
    #pragma GCC unroll 8
    for (size_t j = 0; j < 8; ++j) {
      uint8_t sc, m;
      q4_k_scale_min(block + 4, j, &sc, &m);
      s.scale[j] = d * static_cast<float>(sc);
      s.min[j] = dmin * static_cast<float>(m);
    }
  } else if constexpr (T == GgmlType::kQ6_K) {
    const uint8_t* block = row + 210 * c;
    const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
    const float d = half_at(block + 208);
    #pragma GCC unroll 16
    for (size_t i = 0; i < 16; ++i) s.scale[i] = d * static_cast<float>(scales[i]);
  } else {
    (void)row, (void)c, (void)s;
  }
}

// The fp32 values of group gi (elements 32 gi .. 32 gi + 31) of chunk c of a row of type T;
// `s` from chunk_scales for that chunk.
template <GgmlType T>
inline void decode_in_chunk(const uint8_t* row, size_t c, size_t gi, const ChunkScales& s, V* w) {
  if constexpr (T == GgmlType::kQ4_K) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 144 * c + 16 + 32 * (gi / 2)));
    bytes_to_float(gi % 2 == 0 ? low_nibbles(q) : high_nibbles(q), w);
    const V scale = Simd::set1(s.scale[gi]), min = Simd::set1(s.min[gi]);
    #pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) w[j] = Simd::sub(Simd::mul(scale, w[j]), min);
  } else if constexpr (T == GgmlType::kQ6_K) {
    const uint8_t* block = row + 210 * c;
    const size_t half = gi / 4, group = gi % 4;  // 128-value half, 32-value group in it
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * half + 32 * (group % 2)));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * half));
    const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, static_cast<int>(2 * group)), _mm256_set1_epi8(3));
    const __m256i q = _mm256_or_si256(group < 2 ? low_nibbles(ql) : high_nibbles(ql), _mm256_slli_epi16(top, 4));
    bytes_to_float(_mm256_sub_epi8(q, _mm256_set1_epi8(32)), w);
    #pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) w[j] = Simd::mul(Simd::set1(s.scale[8 * half + 2 * group + j * kLanes / 16]), w[j]);
  } else {
    (void)s, (void)gi;
    decode_group<T>(row, c, w);
  }
}

// Element k of a plain-type row (the tails past the last whole group of 32).
template <GgmlType T>
inline float plain_at(const uint8_t* row, size_t k) {
  if constexpr (T == GgmlType::kF32) {
    float v;
    std::memcpy(&v, row + 4 * k, sizeof v);
    return v;
  } else if constexpr (T == GgmlType::kF16) {
    return half_at(row + 2 * k);
  } else if constexpr (T == GgmlType::kBF16) {
    uint16_t b;
    std::memcpy(&b, row + 2 * k, sizeof b);
    return bf16_to_float(b);
  } else {
    (void)row, (void)k;
    return 0.0f;  // blocked types have no tail (rows are whole blocks)
  }
}

// NT tokens against every row: each row is decoded once per NT tokens, two accumulator chains
// per token.
template <GgmlType T, int NT>
void dot_rows_t(const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, const float* x, size_t ldx, float* y,
                size_t ldy) {
  constexpr size_t kGroups = kChunk<T> / 32;
  const size_t chunks = cols / kChunk<T>;
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    // Indexed only by unrolled constants: GCC then keeps every accumulator in a register.
    V acc[NT][2];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = Simd::zero();
    for (size_t c = 0; c < chunks; ++c) {
      ChunkScales scales;
      chunk_scales<T>(row, c, scales);
#pragma GCC unroll 8
      for (size_t gi = 0; gi < kGroups; ++gi) {
        V wv[kVecs];
        decode_in_chunk<T>(row, c, gi, scales, wv);
        const float* xg = x + c * kChunk<T> + 32 * gi;
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
          for (int j = 0; j < kVecs; ++j)
            acc[t][j % 2] = Simd::fma(wv[j], Simd::loadu(xg + t * ldx + j * kLanes), acc[t][j % 2]);
      }
    }
    for (int t = 0; t < NT; ++t) {
      float sum = Simd::hsum(Simd::add(acc[t][0], acc[t][1]));
      for (size_t k = chunks * kChunk<T>; k < cols; ++k) sum += plain_at<T>(row, k) * x[t * ldx + k];
      y[t * ldy + r] = sum;
    }
  }
}

template <GgmlType T>
void dot_rows_type(const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, const float* x, size_t ldx, size_t n,
                   float* y, size_t ldy) {
  constexpr size_t kTokens = 4;
  for (size_t t = 0; t < n; t += kTokens) {
    const float* xt = x + t * ldx;
    float* yt = y + t * ldy;
    switch (std::min(kTokens, n - t)) {
      case 1: dot_rows_t<T, 1>(w, row_bytes, cols, rows, xt, ldx, yt, ldy); break;
      case 2: dot_rows_t<T, 2>(w, row_bytes, cols, rows, xt, ldx, yt, ldy); break;
      case 3: dot_rows_t<T, 3>(w, row_bytes, cols, rows, xt, ldx, yt, ldy); break;
      default: dot_rows_t<T, 4>(w, row_bytes, cols, rows, xt, ldx, yt, ldy); break;
    }
  }
}

// Chunk c of a row into out[0 .. kChunk<T>).
template <GgmlType T>
inline void decode_chunk(const uint8_t* row, size_t c, float* out) {
  ChunkScales scales;
  chunk_scales<T>(row, c, scales);
  #pragma GCC unroll 8
  for (size_t gi = 0; gi < kChunk<T> / 32; ++gi) {
    V wv[kVecs];
    decode_in_chunk<T>(row, c, gi, scales, wv);
    #pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) Simd::storeu(out + 32 * gi + j * kLanes, wv[j]);
  }
}

template <GgmlType T>
void dequantize_rows_type(const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, float* out) {
  const size_t chunks = cols / kChunk<T>;
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    float* o = out + r * cols;
    for (size_t c = 0; c < chunks; ++c) decode_chunk<T>(row, c, o + c * kChunk<T>);
    for (size_t k = chunks * kChunk<T>; k < cols; ++k) o[k] = plain_at<T>(row, k);
  }
}

// 8 rows of 8 floats (row r at src + r * lds) into 8 columns (column c at dst + c * ldd): the
// usual unpack / shuffle / lane-permute transpose, pure data movement.
inline void transpose8x8(const float* src, size_t lds, float* dst, size_t ldd) {
  __m256 r[8], t[8];
  #pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  #pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  #pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  #pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// Rows straight into the F32 GEMM's panels (model/gemm.h: panel p holds row 16p + j's element k
// at [k][j], rows past `rows` zero): each group of 32 elements of 16 rows is decoded into a
// small tile in L1 and transposed from there.
template <GgmlType T>
void dequantize_panels_type(const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, float* out) {
  constexpr size_t kPanel = 16;
  const size_t chunks = cols / kChunk<T>;
  alignas(64) float tile[kPanel][kChunk<T>];
  for (size_t p0 = 0; p0 < rows; p0 += kPanel) {
    const size_t width = std::min(kPanel, rows - p0);
    float* panel = out + p0 * cols;  // panels of cols x 16 floats
    std::memset(tile, 0, sizeof tile);  // rows past `width` stay zero
    for (size_t c = 0; c < chunks; ++c) {
      for (size_t j = 0; j < width; ++j) decode_chunk<T>(w + (p0 + j) * row_bytes, c, tile[j]);
      float* dst = panel + c * kChunk<T> * kPanel;
      for (size_t kb = 0; kb < kChunk<T>; kb += 8) {
        transpose8x8(&tile[0][kb], kChunk<T>, dst + kb * kPanel, kPanel);
        transpose8x8(&tile[8][kb], kChunk<T>, dst + kb * kPanel + 8, kPanel);
      }
    }
    for (size_t k = chunks * kChunk<T>; k < cols; ++k)
      for (size_t j = 0; j < kPanel; ++j) panel[k * kPanel + j] = j < width ? plain_at<T>(w + (p0 + j) * row_bytes, k) : 0.0f;
  }
}

// ---- Products with int8 activations (model/quant_int8.h), 256-bit integer vectors on every
// instruction set. ----

// x's n rows quantized into a (already sized): the reference's bytes, scales and sums (the
// sums with integer vectors too: quant_matmul quantizes x again for every row range it gets).
// x * (127 / max|x|) never exceeds 127 in magnitude by more than a rounding, so the conversion
// (round to nearest even, like the reference's nearbyint) and the saturating packs give the
// reference's clamped values.
void quantize_activations(const float* x, size_t ldx, Int8Activations& a) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes the packs' lane interleave
  for (size_t t = 0; t < a.n; ++t) {
    const float* xt = x + t * ldx;
    int8_t* q = a.q.data() + t * a.cols;
    for (size_t b = 0; b < a.cols / a.block; ++b) {
      const float* xb = xt + b * a.block;
      __m256 m = _mm256_setzero_ps();
      for (size_t k = 0; k < a.block; k += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xb + k), abs_mask));
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
      a.d[t * (a.cols / a.block) + b] = amax / 127.0f;
      const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
      for (size_t k = 0; k < a.block; k += 32) {
        __m256i v[4];
        #pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + k + 8 * j), id));
        const __m256i bytes = _mm256_permutevar8x32_epi32(
            _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3])), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * a.block + k), bytes);
        // The two sums of 16: bytes to sums of 4 in int32 lanes, then within each 128-bit half.
        __m256i sum = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes), _mm256_set1_epi16(1));
        sum = _mm256_hadd_epi32(sum, sum);
        sum = _mm256_hadd_epi32(sum, sum);
        int16_t* sums = a.sums.data() + (t * a.cols + b * a.block + k) / 16;
        sums[0] = static_cast<int16_t>(_mm256_extract_epi32(sum, 0));
        sums[1] = static_cast<int16_t>(_mm256_extract_epi32(sum, 4));
      }
    }
  }
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 16 int16 sums of byte pairs u * s (u unsigned, s signed, each pair's sum within int16: the
// callers' codes keep |u * s| <= 63 * 127 or 128 * 127), times the 16 int16 factors f, summed
// in pairs: 8 int32.
inline __m256i madd_bytes(__m256i u, __m256i s, __m256i f) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), f); }

// 8 int32 sums of four products of unsigned bytes u and signed bytes s (for the two-step
// form, each pair's sum within int16).
inline __m256i dot_bytes(__m256i u, __m256i s) {
#ifdef PKV_DOT_BYTES_VNNI
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A K-quant super-block's integer factors: Q4_K's 8 scales (bytes 0-7) and mins (bytes 8-15)
// unpacked from their 12 bytes four at a time (the layout of q4_k_scale_min); Q6_K's 16 signed
// scales as they are.
template <GgmlType T>
inline void kquant_factors(const uint8_t* block, uint8_t* out) {
  if constexpr (T == GgmlType::kQ4_K) {
    uint32_t w[3];
    std::memcpy(w, block + 4, sizeof w);
    const uint32_t low6 = 0x3F3F3F3F, low4 = 0x0F0F0F0F, low2 = 0x03030303;
    const uint32_t f[4] = {w[0] & low6, (w[2] & low4) | (((w[0] >> 6) & low2) << 4),  // scales 0-3, 4-7
                           w[1] & low6, ((w[2] >> 4) & low4) | (((w[1] >> 6) & low2) << 4)};  // mins 0-3, 4-7
    std::memcpy(out, f, sizeof f);
  } else {
    std::memcpy(out, block + 192, 16);
  }
}

// The 32 unsigned codes of group gi (elements 32 gi ..) of a K-quant block: Q4_K's nibbles,
// Q6_K's 6-bit codes (value + 32).
template <GgmlType T>
inline __m256i kquant_codes(const uint8_t* block, size_t gi) {
  if constexpr (T == GgmlType::kQ4_K) {
    const __m256i q = load32(block + 16 + 32 * (gi / 2));
    return gi % 2 == 0 ? low_nibbles(q) : high_nibbles(q);
  } else {
    const size_t half = gi / 4, group = gi % 4;  // 128-value half, 32-value group in it
    const __m256i ql = load32(block + 64 * half + 32 * (group % 2));
    const __m256i qh = load32(block + 128 + 32 * half);
    const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, static_cast<int>(2 * group)), _mm256_set1_epi8(3));
    return _mm256_or_si256(group < 2 ? low_nibbles(ql) : high_nibbles(ql), _mm256_slli_epi16(top, 4));
  }
}

// Super-block b of a K-quant row against NT tokens (a's tokens t0 ..), added to acc. Per token
// the integer sum of scale * code * q over the block is formed exactly in int32 lanes (every
// partial sum is below 2^31: |scale| <= 127, codes <= 63, |q| <= 127, 256 values); the offsets
// go through the activations' sums of 16; the block's fp32 factors multiply once per block.
template <GgmlType T, int NT>
inline void int8_kquant_block(const uint8_t* row, size_t b, const Int8Activations& a, size_t t0,
                              __m256* acc) {
  constexpr size_t kBlockBytes = T == GgmlType::kQ4_K ? kQ4_KBlockBytes : kQ6_KBlockBytes;
  const uint8_t* block = row + b * kBlockBytes;
  alignas(16) uint8_t factors[16];
  kquant_factors<T>(block, factors);
  __m256i isum[NT];
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (size_t gi = 0; gi < 8; ++gi) {
    const __m256i codes = kquant_codes<T>(block, gi);
    __m256i f;
    if constexpr (T == GgmlType::kQ4_K) {
      f = _mm256_set1_epi16(factors[gi]);
    } else {  // elements 0-15 and 16-31 of the group have their own scales
      const auto* sc = reinterpret_cast<const int8_t*>(factors);
      f = _mm256_set_m128i(_mm_set1_epi16(sc[2 * gi + 1]), _mm_set1_epi16(sc[2 * gi]));
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t)
      isum[t] =
          _mm256_add_epi32(isum[t], madd_bytes(codes, load32(a.q_of(t0 + t) + b * kKBlock + 32 * gi), f));
  }
  float d, dmin = 0.0f;
  __m256i offset_factors;  // per sum of 16: Q4_K its sub-block's min, Q6_K 32 * its scale
  if constexpr (T == GgmlType::kQ4_K) {
    d = half_at(block), dmin = half_at(block + 2);
    const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(factors + 8)));
    offset_factors = _mm256_set_m128i(_mm_unpackhi_epi16(mins, mins), _mm_unpacklo_epi16(mins, mins));
  } else {
    d = half_at(block + 208);
    const __m128i scales = _mm_load_si128(reinterpret_cast<const __m128i*>(factors));
    offset_factors = _mm256_slli_epi16(_mm256_cvtepi8_epi16(scales), 5);
  }
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) {
    const float dx = a.d_of(t0 + t)[b];
    const __m256i off = _mm256_madd_epi16(load32(a.sums_of(t0 + t) + 16 * b), offset_factors);
    if constexpr (T == GgmlType::kQ4_K) {
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dx), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(off), _mm256_set1_ps(dmin * dx), acc[t]);
    } else {
      acc[t] =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(isum[t], off)), _mm256_set1_ps(d * dx), acc[t]);
    }
  }
}

// Block b of a 32-value type's row against NT tokens, added to acc: codes times activations
// through vpmaddubsw's unsigned x signed form as |code| times q with the code's sign.
template <GgmlType T, int NT>
inline void int8_q_block(const uint8_t* row, size_t b, const Int8Activations& a, size_t t0, __m256* acc) {
  const __m256i codes = block_codes<T>(row, b);
  const __m256i magnitude = _mm256_sign_epi8(codes, codes);
  const float d = half_at(row + kQBlockBytes<T> * b);
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) {
    const __m256i q = _mm256_sign_epi8(load32(a.q_of(t0 + t) + kQBlock * b), codes);
    const __m256 sum = _mm256_cvtepi32_ps(dot_bytes(magnitude, q));
    acc[t] = _mm256_fmadd_ps(sum, _mm256_set1_ps(d * a.d_of(t0 + t)[b]), acc[t]);
  }
}

// NT tokens (a's tokens t0 ..) against every row: each weight block decoded once per NT tokens.
template <GgmlType T, int NT>
void int8_rows_t(const uint8_t* w, size_t row_bytes, size_t rows, const Int8Activations& a, size_t t0,
                 float* y, size_t ldy) {
  const size_t blocks = a.cols / kChunk<T>;
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = w + r * row_bytes;
    __m256 acc[NT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; ++b) {
      if constexpr (kIsKQuant<T>) {
        int8_kquant_block<T, NT>(row, b, a, t0, acc);
      } else {
        int8_q_block<T, NT>(row, b, a, t0, acc);
      }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum8(acc[t]);
  }
}

template <GgmlType T>
void int8_dot_rows_type(const uint8_t* w, size_t row_bytes, size_t rows, const Int8Activations& a, float* y,
                        size_t ldy) {
  constexpr size_t kTokens = 4;
  for (size_t t = 0; t < a.n; t += kTokens) {
    float* yt = y + t * ldy;
    switch (std::min(kTokens, a.n - t)) {
      case 1: int8_rows_t<T, 1>(w, row_bytes, rows, a, t, yt, ldy); break;
      case 2: int8_rows_t<T, 2>(w, row_bytes, rows, a, t, yt, ldy); break;
      case 3: int8_rows_t<T, 3>(w, row_bytes, rows, a, t, yt, ldy); break;
      default: int8_rows_t<T, 4>(w, row_bytes, rows, a, t, yt, ldy); break;
    }
  }
}

void int8_dot_rows(GgmlType type, const uint8_t* w, size_t row_bytes, size_t rows, const Int8Activations& a,
                   float* y, size_t ldy) {
  PKV_CHECK(int8_activation_block(type) == a.block, "{} against activation blocks of {}",
            ggml_type_name(type), a.block);
  switch (type) {
    case GgmlType::kQ8_0:
      int8_dot_rows_type<GgmlType::kQ8_0>(w, row_bytes, rows, a, y, ldy);
      break;
    case GgmlType::kQ4_0:
      int8_dot_rows_type<GgmlType::kQ4_0>(w, row_bytes, rows, a, y, ldy);
      break;
    case GgmlType::kQ5_0:
      int8_dot_rows_type<GgmlType::kQ5_0>(w, row_bytes, rows, a, y, ldy);
      break;
    case GgmlType::kQ4_K:
      int8_dot_rows_type<GgmlType::kQ4_K>(w, row_bytes, rows, a, y, ldy);
      break;
    case GgmlType::kQ6_K:
      int8_dot_rows_type<GgmlType::kQ6_K>(w, row_bytes, rows, a, y, ldy);
      break;
    default:
      PKV_CHECK(false, "no int8 product for type {}", ggml_type_name(type));
  }
}

#define PKV_QUANT_TYPE_SWITCH(type, fn, ...)                           \
  switch (type) {                                                      \
    case GgmlType::kF32:                                               \
      fn<GgmlType::kF32>(__VA_ARGS__);                                 \
      break;                                                           \
    case GgmlType::kF16:                                               \
      fn<GgmlType::kF16>(__VA_ARGS__);                                 \
      break;                                                           \
    case GgmlType::kBF16:                                              \
      fn<GgmlType::kBF16>(__VA_ARGS__);                                \
      break;                                                           \
    case GgmlType::kQ8_0:                                              \
      fn<GgmlType::kQ8_0>(__VA_ARGS__);                                \
      break;                                                           \
    case GgmlType::kQ4_0:                                              \
      fn<GgmlType::kQ4_0>(__VA_ARGS__);                                \
      break;                                                           \
    case GgmlType::kQ5_0:                                              \
      fn<GgmlType::kQ5_0>(__VA_ARGS__);                                \
      break;                                                           \
    case GgmlType::kQ4_K:                                              \
      fn<GgmlType::kQ4_K>(__VA_ARGS__);                                \
      break;                                                           \
    case GgmlType::kQ6_K:                                              \
      fn<GgmlType::kQ6_K>(__VA_ARGS__);                                \
      break;                                                           \
    default:                                                           \
      PKV_CHECK(false, "no kernel for type {}", ggml_type_name(type)); \
  }

void dot_rows(GgmlType type, const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, const float* x, size_t ldx,
              size_t n, float* y, size_t ldy) {
  PKV_QUANT_TYPE_SWITCH(type, dot_rows_type, w, row_bytes, cols, rows, x, ldx, n, y, ldy)
}

void dequantize_rows(GgmlType type, const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, float* out) {
  PKV_QUANT_TYPE_SWITCH(type, dequantize_rows_type, w, row_bytes, cols, rows, out)
}

void dequantize_panels(GgmlType type, const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, float* out) {
  PKV_QUANT_TYPE_SWITCH(type, dequantize_panels_type, w, row_bytes, cols, rows, out)
}

#undef PKV_QUANT_TYPE_SWITCH
