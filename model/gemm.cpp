#include "model/gemm.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "common/check.h"
#include "common/large_buffer.h"
#include "model/half.h"

namespace prunekv {

namespace {

template <typename Part>
size_t count_panels(std::span<const Part> parts) {
  size_t num_panels = 0;
  for (const Part& part : parts) num_panels += (part.out + kGemmPanel - 1) / kGemmPanel;
  return num_panels;
}

}  // namespace

PackedWeights::PackedWeights(std::span<const GemmPart> parts, size_t in) : in_(in) {
  PKV_CHECK(!parts.empty() && in > 0, "{} parts of in = {}", parts.size(), in);
  capacity_floats_ = count_panels(parts) * in_ * kGemmPanel;
  data_.reset(reinterpret_cast<float*>(allocate_large(capacity_floats_ * sizeof(float))));
  pack_panels(parts);
}

PackedWeights::PackedWeights(std::span<const GemmHalfPart> parts, size_t in) : in_(in), half_(true) {
  PKV_CHECK(!parts.empty() && in > 0, "{} parts of in = {}", parts.size(), in);
  const size_t halves = count_panels(parts) * in_ * kGemmPanel;  // a multiple of 16: whole floats
  capacity_floats_ = halves / 2;
  data_.reset(reinterpret_cast<float*>(allocate_large(halves * sizeof(uint16_t))));
  pack_panels(parts);
}

PackedWeights PackedWeights::scratch(size_t in, size_t max_out) {
  PackedWeights w;
  w.capacity_floats_ = (max_out + kGemmPanel - 1) / kGemmPanel * kGemmPanel * in;
  w.data_.reset(reinterpret_cast<float*>(allocate_large(w.capacity_floats_ * sizeof(float))));
  return w;
}

float* PackedWeights::fill(size_t out, size_t in) {
  PKV_CHECK(!half_, "fill() on half panels");
  PKV_CHECK(in > 0 && out > 0 && (out + kGemmPanel - 1) / kGemmPanel * kGemmPanel * in <= capacity_floats_,
            "[{}][{}] into scratch of {} floats", out, in, capacity_floats_);
  in_ = in;
  part_out_.clear();
  panels_.clear();
  add_part(out);
  return data_.get();
}

void PackedWeights::add_part(size_t out) {
  const auto part = static_cast<uint32_t>(part_out_.size());
  part_out_.push_back(out);
  for (size_t col = 0; col < out; col += kGemmPanel)
    panels_.push_back({part, static_cast<uint32_t>(col), static_cast<uint32_t>(std::min(kGemmPanel, out - col))});
}

template <typename Part>
void PackedWeights::pack_panels(std::span<const Part> parts) {
  using Element = std::remove_const_t<std::remove_pointer_t<decltype(Part::w)>>;
  part_out_.clear();
  panels_.clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    PKV_CHECK(parts[i].w != nullptr && parts[i].out > 0, "part {}: out = {}", i, parts[i].out);
    add_part(parts[i].out);
  }
  const size_t panel_elements = in_ * kGemmPanel;
  // Panel by panel, k-blocked so both the 16 source rows and the destination stay in L1.
  constexpr size_t kBlock = 64;
  for (size_t p = 0; p < panels_.size(); ++p) {
    const Panel& pn = panels_[p];
    const Element* src = parts[pn.part].w + size_t{pn.col} * in_;
    Element* dst = reinterpret_cast<Element*>(data_.get()) + p * panel_elements;
    for (size_t k0 = 0; k0 < in_; k0 += kBlock) {
      const size_t k1 = std::min(in_, k0 + kBlock);
      for (size_t j = 0; j < kGemmPanel; ++j) {
        for (size_t k = k0; k < k1; ++k) dst[k * kGemmPanel + j] = j < pn.width ? src[j * in_ + k] : Element{0};
      }
    }
  }
}

size_t PackedWeights::total_out() const {
  size_t total = 0;
  for (size_t out : part_out_) total += out;
  return total;
}

namespace {

// Writes a tile row's 16 results of panel `pn` (only its real columns) for token t.
inline void store_panel_row(const PackedWeights::Panel& pn, const GemmOut* outs, size_t t, const float* values) {
  float* dst = outs[pn.part].y + t * outs[pn.part].ldy + pn.col;
  if (pn.width == kGemmPanel) {
    std::memcpy(dst, values, kGemmPanel * sizeof(float));  // a constant size: two vector moves
  } else {
    std::memcpy(dst, values, pn.width * sizeof(float));
  }
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

// The vector the tile works in: two ymm per panel row. (A zmm per panel row measured the same
// on Zen 4, which runs AVX-512 as two 256-bit halves: the 6x32 ymm tile already keeps both FMA
// pipes busy.) Where AVX-512VL is on, its EVEX encoding gives 32 ymm registers, so the tile can
// hold twice the accumulators.
struct Simd {
  using V = __m256;
  static constexpr int kPerPanel = 2;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, V v) { _mm256_store_ps(p, v); }
};
#if defined(__AVX512VL__)
constexpr int kAccRegs = 24;  // of 32: the rest hold weights and the broadcast x
#else
constexpr int kAccRegs = 12;  // of 16
#endif
constexpr int kLanes = static_cast<int>(kGemmPanel) / Simd::kPerPanel;
constexpr int kMaxRows = 6;
constexpr int kMaxPanels = 4;
// Weights come from DRAM or L3 (a step streams every matrix once), one panel row (a cache line)
// per k per panel. Left to the hardware prefetcher, the first token tile over a panel group
// stalls on them (it stops at 4 KiB pages) while the later tiles compute with the memory idle:
// at 32 tokens the first tile took as long as the five after it. So the tiles over a group
// prefetch the next group into L2, each tile every num_tiles-th of its rows, and memory
// traffic overlaps the FMAs. A call's first group (and, with one tile, groups larger than
// kPrefetchGroupBytes) instead prefetches itself kPrefetchAhead rows ahead.
constexpr size_t kPrefetchAhead = 16;
constexpr size_t kPrefetchGroupBytes = 96 * 1024;

// Which rows of the next panel group a tile prefetches: k = first, first + step, ...
struct NextGroup {
  const char* data = nullptr;  // its first panel; null: nothing to prefetch
  int panels = 0;
  size_t first = 0;
  size_t step = 1;
};

constexpr int panels_per_tile(int rows) {
  return std::clamp(kAccRegs / (Simd::kPerPanel * rows), 1, kMaxPanels);
}

// The panels' elements: floats, or halves widened on load (exact).
inline Simd::V load_weights(const float* p) { return Simd::load(p); }
inline Simd::V load_weights(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}
template <typename E>
const E* panels_of(const PackedWeights& w, size_t p) {
  if constexpr (std::is_same_v<E, float>) {
    return w.panel_data(p);
  } else {
    return w.panel_half(p);
  }
}

// R tokens x P consecutive panels, the whole k loop in registers: per k, P panel rows of
// weights loaded and R broadcasts for R x P x 16 multiply-adds. Each accumulator lane is one
// output element's fma chain over k.
template <typename E, int R, int P, bool Prefetch>
void tile(const float* x, size_t ldx, const PackedWeights& w, size_t p0, const GemmOut* outs, size_t t0,
          const NextGroup& next) {
  constexpr int V = Simd::kPerPanel;
  constexpr size_t kRowBytes = kGemmPanel * sizeof(E);
  const size_t in = w.in();
  const E* wp = panels_of<E>(w, p0);
  const size_t panel_stride = in * kGemmPanel;
  Simd::V acc[R][P][V];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < P; ++q)
      for (int v = 0; v < V; ++v) acc[r][q][v] = Simd::zero();
  size_t next_k = next.data ? next.first : in;
  for (size_t k = 0; k < in; ++k) {
    // (A panel row of halves is half a cache line: a prefetch per line, every other k.)
    if (Prefetch && k + kPrefetchAhead < in && (k * kRowBytes) % 64 == 0) {
#pragma GCC unroll 4
      for (int q = 0; q < P; ++q)
        _mm_prefetch(reinterpret_cast<const char*>(wp + q * panel_stride + (k + kPrefetchAhead) * kGemmPanel),
                     _MM_HINT_T0);
    }
    if (k == next_k) {
      for (int q = 0; q < next.panels; ++q)
        _mm_prefetch(next.data + (q * panel_stride + k * kGemmPanel) * sizeof(E), _MM_HINT_T1);
      next_k += next.step;
    }
    Simd::V wv[P][V];
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) wv[q][v] = load_weights(wp + q * panel_stride + k * kGemmPanel + v * kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const Simd::V xb = Simd::broadcast(x + r * ldx + k);
#pragma GCC unroll 4
      for (int q = 0; q < P; ++q)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[r][q][v] = Simd::fma(wv[q][v], xb, acc[r][q][v]);
    }
  }
  // Out of registers through a tile on the stack: indexing acc only with unrolled constants
  // keeps GCC from spilling the accumulators to memory on every k.
  alignas(64) float values[R][P][kGemmPanel];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) Simd::store(values[r][q] + v * kLanes, acc[r][q][v]);
  for (int q = 0; q < P; ++q) {
    const PackedWeights::Panel& pn = w.panel(p0 + q);
    for (int r = 0; r < R; ++r) store_panel_row(pn, outs, t0 + r, values[r][q]);
  }
}

using TileFn = void (*)(const float*, size_t, const PackedWeights&, size_t, const GemmOut*, size_t, const NextGroup&);

template <typename E, int R, bool Prefetch>
TileFn tile_for_panels(int panels) {
  switch (panels) {
    case 1: return tile<E, R, 1, Prefetch>;
    case 2: return tile<E, R, 2, Prefetch>;
    case 3: return tile<E, R, 3, Prefetch>;
    default: return tile<E, R, 4, Prefetch>;
  }
}

template <typename E, bool Prefetch>
TileFn tile_fn(int rows, int panels) {
  switch (rows) {
    case 1: return tile_for_panels<E, 1, Prefetch>(panels);
    case 2: return tile_for_panels<E, 2, Prefetch>(panels);
    case 3: return tile_for_panels<E, 3, Prefetch>(panels);
    case 4: return tile_for_panels<E, 4, Prefetch>(panels);
    case 5: return tile_for_panels<E, 5, Prefetch>(panels);
    default: return tile_for_panels<E, 6, Prefetch>(panels);
  }
}

// The panels of w from panel_begin to panel_end, tiled as gemm_packed describes.
template <typename E>
void gemm_tiles(const PackedWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs, size_t panel_begin,
                size_t panel_end) {
  // Tokens in tiles of at most 6 rows, as even as possible (32 = 6+6+5+5+5+5, not 6x5+2: a
  // short tile wastes its share of the loads). Panels outer, tokens inner: a group of panels
  // stays in L1 while every token tile of the call streams past it; the group is as wide as the
  // tallest tile leaves accumulator registers for.
  const size_t num_tiles = (n + kMaxRows - 1) / kMaxRows;
  const size_t short_rows = n / num_tiles, tall_tiles = n % num_tiles;  // tall: short_rows + 1
  const size_t group = gemm_panel_group(n);
  // With one tile (n <= 6) nothing computes between two groups' loads, and prefetching a whole
  // group ahead only pays while a group is small (stories15M's 55-74 KiB: +10..20% at 1 and 4
  // tokens; stories110M's 147-196 KiB: -10%); larger groups prefetch themselves.
  const bool prefetch_next = num_tiles > 1 || group * w.in() * kGemmPanel * sizeof(E) <= kPrefetchGroupBytes;
  for (size_t p = panel_begin; p < panel_end; p += group) {
    const int panels = static_cast<int>(std::min(group, panel_end - p));
    NextGroup next;
    if (prefetch_next && p + group < panel_end) {
      next = {reinterpret_cast<const char*>(panels_of<E>(w, p + group)),
              static_cast<int>(std::min(group, panel_end - p - group)), 0, num_tiles};
    }
    size_t t = 0;
    for (size_t i = 0; i < num_tiles; ++i) {
      const int rows = static_cast<int>(short_rows + (i < tall_tiles ? 1 : 0));
      const bool fetch_own = i == 0 && (p == panel_begin || !prefetch_next);
      const TileFn fn = fetch_own ? tile_fn<E, true>(rows, panels) : tile_fn<E, false>(rows, panels);
      next.first = i;
      fn(x + t * ldx, ldx, w, p, outs, t, next);
      t += static_cast<size_t>(rows);
    }
  }
}

#endif

}  // namespace

void gemm_packed_reference(const PackedWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs,
                           size_t panel_begin, size_t panel_end) {
  PKV_DCHECK(panel_begin <= panel_end && panel_end <= w.num_panels());
  const size_t in = w.in();
  for (size_t p = panel_begin; p < panel_end; ++p) {
    auto weight = [&](size_t k, size_t j) {
      const size_t at = k * kGemmPanel + j;
      return w.is_half() ? half_to_float(w.panel_half(p)[at]) : w.panel_data(p)[at];
    };
    for (size_t t = 0; t < n; ++t) {
      float values[kGemmPanel];
      for (size_t j = 0; j < kGemmPanel; ++j) {
        float acc = 0.0f;
        for (size_t k = 0; k < in; ++k) acc = std::fma(weight(k, j), x[t * ldx + k], acc);
        values[j] = acc;
      }
      store_panel_row(w.panel(p), outs, t, values);
    }
  }
}

size_t gemm_panel_group(size_t n) {
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  const size_t num_tiles = std::max<size_t>(1, (n + kMaxRows - 1) / kMaxRows);
  return static_cast<size_t>(panels_per_tile(static_cast<int>((n + num_tiles - 1) / num_tiles)));
#else
  (void)n;
  return 1;
#endif
}

void gemm_packed(const PackedWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs,
                 size_t panel_begin, size_t panel_end) {
  PKV_DCHECK(panel_begin <= panel_end && panel_end <= w.num_panels());
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  if (n == 0) return;
  if (w.is_half()) {
    gemm_tiles<uint16_t>(w, x, ldx, n, outs, panel_begin, panel_end);
  } else {
    gemm_tiles<float>(w, x, ldx, n, outs, panel_begin, panel_end);
  }
#else
  gemm_packed_reference(w, x, ldx, n, outs, panel_begin, panel_end);
#endif
}

}  // namespace prunekv
