#include "model/attention.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "common/check.h"
#include "memory/half.h"
#include "memory/slot_stats.h"
#include "model/ops.h"
#include "model/simd_exp.h"

namespace prunekv {

namespace {

// Query rows per tile of the SIMD kernel (tokens per tile = kTileRows / G, at least one).
constexpr size_t kTileRows = 16;

inline void axpy(float* y, float a, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// Blocks ahead of the one being read whose K (or V) half is requested into L2. A list's blocks
// lie scattered over the arena, so the hardware prefetchers lose the stream at every block
// boundary (measured: a single thread reads 3 KiB runs at random places at 7 GB/s, 12-13 GB/s
// with the next runs prefetched into L2, against 26 GB/s for one sequential stream).
constexpr size_t kPrefetchBlocksAhead = 2;

// Requests [p, p + bytes) into L2 (locality 2 = x86's prefetcht1), one request per cache line.
inline void prefetch_l2(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 2);
}

#if defined(__AVX2__) && defined(__FMA__)
constexpr bool kHaveAvx2 = true;

// Four dot products of q with k0..k3 over hd (a multiple of 8), each reduced in the same fixed
// order; a lone slot passes itself four times, so every slot's score has the same bits whether
// it was computed in a group or alone.
inline __m128 dot4(const float* q, const float* k0, const float* k1, const float* k2, const float* k3,
                   size_t hd) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t d = 0; d < hd; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
    a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
    a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + d), a1);
    a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + d), a2);
    a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + d), a3);
  }
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// s[0, n) = exp(s - max(s)), the softmax before normalisation: exact max, vector exp, 8-lane
// sum in a fixed order. Returns 1 / sum: the probabilities are s[j] * (1 / sum).
inline float softmax_unnormalized(float* s, size_t n) {
  const size_t n8 = n / 8 * 8;
  // The last n - n8 scores as one masked vector (lanes past n load as zero, stay unwritten and
  // add nothing), so a row's tail costs one vector exp, not one per score.
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - n8)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 tail_ps = _mm256_castsi256_ps(tail);
  __m256 mv = _mm256_set1_ps(s[0]);
  for (size_t j = 0; j < n8; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
  if (n8 < n) mv = _mm256_max_ps(mv, _mm256_blendv_ps(mv, _mm256_maskload_ps(s + n8, tail), tail_ps));
  float buf[8];
  _mm256_storeu_ps(buf, mv);
  float max_score = buf[0];
  for (float b : buf) max_score = std::max(max_score, b);
  const __m256 m = _mm256_set1_ps(max_score);
  __m256 sv = _mm256_setzero_ps();
  for (size_t j = 0; j < n8; j += 8) {
    const __m256 e = simd::exp(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
    _mm256_storeu_ps(s + j, e);
    sv = _mm256_add_ps(sv, e);
  }
  if (n8 < n) {
    const __m256 e = simd::exp(_mm256_sub_ps(_mm256_maskload_ps(s + n8, tail), m));
    _mm256_maskstore_ps(s + n8, tail, e);
    sv = _mm256_add_ps(sv, _mm256_and_ps(e, tail_ps));
  }
  _mm256_storeu_ps(buf, sv);
  float sum = 0.0f;
  for (float b : buf) sum += b;
  return 1.0f / sum;
}

// ---- The tiled kernel. A tile = the G query rows of each of t consecutive tokens of one
// sequence and KV head; row r is (token r / G, query head r % G), so rows are ordered by token
// and a row's visible slot count never decreases with r. ----

struct Tile {
  const float* q;  // row 0's query; token stride `row`, query head stride hd
  float* out;      // likewise
  float* scores;   // row r's scores, then exp(score - max), at scores + r * stride
  float* inv_sum;  // row r's 1 / sum of exp(score - max): its probabilities are p(r)[j] * inv_sum[r]
  size_t stride;
  size_t row;
  size_t group;
  size_t hd;
  size_t first_visible;  // slots token 0 of the tile sees
  size_t rows;

  float* out_of(size_t r) const { return out + (r / group) * row + (r % group) * hd; }
  size_t visible(size_t r) const { return first_visible + r / group; }
  float* p(size_t r) const { return scores + r * stride; }
  size_t tokens() const { return rows / group; }
  // The first token of the tile that sees `slot`.
  size_t first_token_seeing(size_t slot) const { return slot < first_visible ? 0 : slot - first_visible + 1; }
};

// One list's blocks: K[block_size][hd] at data[b], V[block_size][hd] after it.
struct KvBlocks {
  const float* const* data;
  size_t num_blocks;
  size_t block_size;
  size_t hd;
  const float* k(size_t b) const { return data[b]; }
  const float* v(size_t b) const { return data[b] + block_size * hd; }
  const float* half(size_t b, int which) const { return which == 0 ? k(b) : v(b); }  // 0: K, 1: V
  size_t half_bytes() const { return block_size * hd * sizeof(float); }
};

// Requests K (which = 0) or V (1) of block b + kPrefetchBlocksAhead, if there is one.
inline void prefetch_ahead(const KvBlocks& kv, size_t b, int which) {
  const size_t ahead = b + kPrefetchBlocksAhead;
  if (ahead < kv.num_blocks) prefetch_l2(kv.half(ahead, which), kv.half_bytes());
}

// Requests the first blocks' K or V, before a pass starts reading them.
inline void prefetch_first(const KvBlocks& kv, int which) {
  for (size_t b = 0; b < std::min(kPrefetchBlocksAhead, kv.num_blocks); ++b)
    prefetch_l2(kv.half(b, which), kv.half_bytes());
}

alignas(32) constexpr float kZeroRow[8] = {};

// kt[d] = (k[0][d], ..., k[7][d]) for eight 8-float rows.
inline void transpose8x8(const float* const* k, __m256* kt) {
  const auto pair = [](const float* lo, const float* hi) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
  };
  for (int h = 0; h < 2; ++h) {  // dimensions 4h .. 4h + 3
    const __m256 r0 = pair(k[0] + 4 * h, k[4] + 4 * h), r1 = pair(k[1] + 4 * h, k[5] + 4 * h);
    const __m256 r2 = pair(k[2] + 4 * h, k[6] + 4 * h), r3 = pair(k[3] + 4 * h, k[7] + 4 * h);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    kt[4 * h + 0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    kt[4 * h + 1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    kt[4 * h + 2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    kt[4 * h + 3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  }
}

// head_dim 8: per block, eight slots at a time are transposed once for the whole tile, and
// each row's eight scores are (q[0] k[0] + ... + q[3] k[3]) + (q[4] k[4] + ... + q[7] k[7]),
// each half a multiply and three FMAs in dimension order: no horizontal adds, and two short
// chains for decode, where only G rows share the transposition. Lanes past a row's visible
// slots (and past the block) hold garbage that nothing reads; the row stride leaves room.
void tile_scores_hd8(const Tile& t, const KvBlocks& kv, float scale) {
  const size_t last = t.visible(t.rows - 1);
  const __m256 sc = _mm256_set1_ps(scale);
  for (size_t b = 0, slot = 0; slot < last; ++b) {
    const float* k = kv.k(b);
    prefetch_ahead(kv, b, 0);
    const size_t count = std::min(kv.block_size, last - slot);
    for (size_t j = 0; j < count; j += 8) {
      const size_t m = std::min<size_t>(8, count - j);
      const float* rows[8];
      for (size_t l = 0; l < 8; ++l) rows[l] = l < m ? k + (j + l) * 8 : kZeroRow;
      __m256 kt[8];
      transpose8x8(rows, kt);
      const size_t s0 = slot + j;
      for (size_t ti = t.first_token_seeing(s0); ti < t.tokens(); ++ti) {
        for (size_t g = 0; g < t.group; ++g) {
          const float* q = t.q + ti * t.row + g * 8;
          __m256 lo = _mm256_mul_ps(_mm256_broadcast_ss(q), kt[0]);
          __m256 hi = _mm256_mul_ps(_mm256_broadcast_ss(q + 4), kt[4]);
          for (int d = 1; d < 4; ++d) {
            lo = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d), kt[d], lo);
            hi = _mm256_fmadd_ps(_mm256_broadcast_ss(q + 4 + d), kt[4 + d], hi);
          }
          _mm256_storeu_ps(t.p(ti * t.group + g) + s0, _mm256_mul_ps(_mm256_add_ps(lo, hi), sc));
        }
      }
    }
    slot += count;
  }
}

// head_dim 16, 24, ...: per block, every row's scores four slots at a time (dot4), the block's
// keys shared by the tile's rows while they are in L1.
void tile_scores_dot4(const Tile& t, const KvBlocks& kv, float scale) {
  const size_t hd = t.hd;
  const size_t last = t.visible(t.rows - 1);
  const __m128 sc = _mm_set1_ps(scale);
  for (size_t b = 0, slot = 0; slot < last; ++b) {
    const float* k = kv.k(b);
    prefetch_ahead(kv, b, 0);
    const size_t count = std::min(kv.block_size, last - slot);
    for (size_t ti = t.first_token_seeing(slot); ti < t.tokens(); ++ti) {
      const size_t n = std::min(count, t.first_visible + ti - slot);
      for (size_t g = 0; g < t.group; ++g) {
        const float* q = t.q + ti * t.row + g * hd;
        float* s = t.p(ti * t.group + g) + slot;
        size_t j = 0;
        for (; j + 4 <= n; j += 4) {
          const float* kj = k + j * hd;
          _mm_storeu_ps(s + j, _mm_mul_ps(dot4(q, kj, kj + hd, kj + 2 * hd, kj + 3 * hd, hd), sc));
        }
        for (; j < n; ++j) {
          const float* kj = k + j * hd;
          s[j] = _mm_cvtss_f32(dot4(q, kj, kj, kj, kj, hd)) * scale;
        }
      }
    }
    slot += count;
  }
}

// acc[r] += p_r[slot] * V_slot[offset, offset + 8 NV) for the rows r < R with slot < vis[r].
template <int NV, int R, bool kMasked>
inline void fma_slot(__m256 (&acc)[R][NV], const float* const (&p)[R], const size_t (&vis)[R], size_t slot,
                     const float* v) {
  __m256 vv[NV];
#pragma GCC unroll 4
  for (int i = 0; i < NV; ++i) vv[i] = _mm256_loadu_ps(v + 8 * i);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (kMasked && slot >= vis[r]) continue;
    const __m256 pr = _mm256_broadcast_ss(p[r] + slot);
#pragma GCC unroll 4
    for (int i = 0; i < NV; ++i) acc[r][i] = _mm256_fmadd_ps(pr, vv[i], acc[r][i]);
  }
}

// fma_slot into accumulator set a = slot % A (a switch, so that every index stays a constant
// and the accumulators stay in registers).
template <int NV, int A, int R, bool kMasked>
inline void fma_slot_at(__m256 (&acc)[A][R][NV], const float* const (&p)[R], const size_t (&vis)[R],
                        size_t slot, const float* v) {
  switch (slot % A) {
    case 0:
      fma_slot<NV, R, kMasked>(acc[0], p, vis, slot, v);
      break;
    case 1:
      if constexpr (A > 1) fma_slot<NV, R, kMasked>(acc[A > 1 ? 1 : 0], p, vis, slot, v);
      break;
    case 2:
      if constexpr (A > 2) fma_slot<NV, R, kMasked>(acc[A > 2 ? 2 : 0], p, vis, slot, v);
      break;
    default:
      if constexpr (A > 3) fma_slot<NV, R, kMasked>(acc[A > 3 ? 3 : 0], p, vis, slot, v);
      break;
  }
}

// out_r[offset, offset + 8 NV) = (sum over row r's visible slots of e_r[slot] V_slot) / sum_r
// for the R rows r0 .. r0 + R - 1, accumulated in registers and normalised once at the end.
// A row keeps A accumulators, accumulator a summing the slots with slot % A == a in order,
// added pairwise at the end (a decode row would otherwise wait on one FMA chain); a row's sums
// depend only on its own probabilities and slots, never on R or the tile.
template <int NV, int A, int R>
void tile_weighted_sum_rows(const Tile& t, size_t r0, const KvBlocks& kv, size_t offset) {
  static_assert(A == 1 || A == 2 || A == 4);
  __m256 acc[A][R][NV];
#pragma GCC unroll 4
  for (int a = 0; a < A; ++a)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int i = 0; i < NV; ++i) acc[a][r][i] = _mm256_setzero_ps();
  const float* p[R];
  size_t vis[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    p[r] = t.p(r0 + r);
    vis[r] = t.visible(r0 + r);
  }
  const size_t common = vis[0], last = vis[R - 1];
  const size_t hd = kv.hd, bs = kv.block_size;
  for (size_t b = 0, slot = 0; slot < last; ++b) {
    const float* vb = kv.v(b) + offset;
    if (offset == 0 && r0 == 0) prefetch_ahead(kv, b, 1);  // later row groups and column passes find V in L2
    const size_t base = b * bs;  // slot s of this block at vb + (s - base) * hd
    const size_t stop = std::min(last, base + bs);
    const size_t stop_common = std::min(common, stop);
    for (; slot < stop_common && slot % A != 0; ++slot) {
      fma_slot_at<NV, A, R, false>(acc, p, vis, slot, vb + (slot - base) * hd);
    }
    for (; slot + A <= stop_common; slot += A) {
#pragma GCC unroll 4
      for (int a = 0; a < A; ++a)
        fma_slot<NV, R, false>(acc[a], p, vis, slot + a, vb + (slot + a - base) * hd);
    }
    for (; slot < stop_common; ++slot)
      fma_slot_at<NV, A, R, false>(acc, p, vis, slot, vb + (slot - base) * hd);
    // The tile's triangle: its rows see different counts.
    for (; slot < stop; ++slot) fma_slot_at<NV, A, R, true>(acc, p, vis, slot, vb + (slot - base) * hd);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* o = t.out_of(r0 + r) + offset;
    const __m256 inv = _mm256_set1_ps(t.inv_sum[r0 + r]);
#pragma GCC unroll 4
    for (int i = 0; i < NV; ++i) {
      __m256 sum = acc[0][r][i];
      if constexpr (A == 2) sum = _mm256_add_ps(acc[0][r][i], acc[A - 1][r][i]);
      if constexpr (A == 4) {
        sum = _mm256_add_ps(_mm256_add_ps(acc[0][r][i], acc[A > 1 ? 1 : 0][r][i]),
                            _mm256_add_ps(acc[A > 2 ? 2 : 0][r][i], acc[A > 3 ? 3 : 0][r][i]));
      }
      _mm256_storeu_ps(o + 8 * i, _mm256_mul_ps(sum, inv));
    }
  }
}

template <int NV, int A, int R>
void tile_weighted_sum_dispatch(const Tile& t, size_t r0, size_t rows, const KvBlocks& kv, size_t offset) {
  if constexpr (R > 1) {
    if (rows < size_t{R}) return tile_weighted_sum_dispatch<NV, A, R - 1>(t, r0, rows, kv, offset);
  }
  tile_weighted_sum_rows<NV, A, R>(t, r0, kv, offset);
}

// Vector registers the accumulators of tile_weighted_sum_rows may fill (AVX-512VL has 32).
#if defined(__AVX512VL__)
constexpr int kAccumulatorRegisters = 24;
#else
constexpr int kAccumulatorRegisters = 12;
#endif

// Rows in groups of up to kAccumulatorRegisters / (NV A), A = 4 / NV accumulators per row: at
// least four FMA chains per row whatever head_dim.
template <int NV>
void tile_weighted_sum(const Tile& t, const KvBlocks& kv, size_t offset) {
  constexpr int A = NV == 1 ? 4 : NV == 2 ? 2 : 1;
  constexpr int kMaxRows = std::clamp(kAccumulatorRegisters / (NV * A), 1, 6);
  for (size_t r0 = 0; r0 < t.rows; r0 += kMaxRows) {
    tile_weighted_sum_dispatch<NV, A, kMaxRows>(t, r0, std::min<size_t>(kMaxRows, t.rows - r0), kv, offset);
  }
}
#else
constexpr bool kHaveAvx2 = false;
#endif

}  // namespace

PagedAttention::PagedAttention(uint32_t num_heads, uint32_t num_kv_heads, uint32_t head_dim,
                               size_t num_workers)
    : num_heads_(num_heads),
      num_kv_heads_(num_kv_heads),
      head_dim_(head_dim),
      group_(num_heads / num_kv_heads),
      scale_(1.0f / std::sqrt(static_cast<float>(head_dim))),
      tile_tokens_(std::max<size_t>(1, kTileRows / std::max<uint32_t>(group_, 1))),
      scratch_(std::max<size_t>(num_workers, 1)),
      block_data_(scratch_.size()),
      widened_(scratch_.size()) {
  PKV_CHECK(num_kv_heads > 0 && num_heads % num_kv_heads == 0, "{} query heads over {} KV heads",
            num_heads, num_kv_heads);
}

void PagedAttention::reserve(const StepBatch& batch) {
  size_t longest = 0, most_blocks = 0, widest = 0;
  for (const StepSequence& seq : batch.seqs) {
    const KvLayout& layout = seq.kv->layout();
    PKV_CHECK(layout.head_dim == head_dim_ && layout.num_kv_heads == num_kv_heads_,
              "KV layout (head_dim {}, {} KV heads) does not match the model (head_dim {}, {} KV heads)",
              layout.head_dim, layout.num_kv_heads, head_dim_, num_kv_heads_);
    PKV_CHECK(!seq.stats || seq.kv->stats_group() == group_,
              "statistics requested but the sequence carries {} stats per KV head, model has G = {}",
              seq.kv->stats_group(), group_);
    PKV_CHECK(!seq.stats || (seq.stats->stats & ~seq.kv->stats_carried()) == 0,
              "statistics {:#x} requested but the sequence carries only {:#x}", seq.stats->stats,
              seq.kv->stats_carried());
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      for (uint32_t h = 0; h < num_kv_heads_; ++h) {
        const size_t slots = seq.kv->num_slots(layer, h);
        PKV_CHECK(slots >= seq.num_tokens, "list ({}, {}) holds {} slots, fewer than the step's {} tokens",
                  layer, h, slots, seq.num_tokens);
        longest = std::max(longest, slots);
        most_blocks = std::max(most_blocks, seq.kv->blocks(layer, h).size());
        if (layout.dtype == KvDtype::kF16)
          widest = std::max(widest, seq.kv->blocks(layer, h).size() * 2 * layout.block_size * head_dim_);
      }
    }
  }
  if (most_blocks > block_data_[0].size()) {
    for (auto& b : block_data_) b.resize(most_blocks);
  }
  if (widest > widened_[0].size()) {
    for (auto& w : widened_) w.resize(widest);
  }
  if (longest <= scratch_slots_) return;
  scratch_slots_ = longest;
  row_stride_ = (scratch_slots_ + 15) / 8 * 8;
  for (auto& s : scratch_) s.resize(tile_tokens_ * group_ * (row_stride_ + 1));  // + the rows' 1 / sums
}

void PagedAttention::gather_blocks(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, size_t worker) noexcept {
  const std::span<const BlockId> ids = kv.blocks(layer, kv_head);
  const float** block_data = block_data_[worker].data();
  const BlockPool& pool = kv.pool();
  if (kv.layout().dtype == KvDtype::kF32) {
    for (size_t b = 0; b < ids.size(); ++b) block_data[b] = reinterpret_cast<const float*>(pool.block_data(ids[b]));
    return;
  }
  const size_t block_floats = 2 * size_t{kv.layout().block_size} * head_dim_;  // K then V
  float* widened = widened_[worker].data();
  for (size_t b = 0; b < ids.size(); ++b) {
    if (b + kPrefetchBlocksAhead < ids.size())
      prefetch_l2(pool.block_data(ids[b + kPrefetchBlocksAhead]), block_floats * sizeof(uint16_t));
    halves_to_floats(widened + b * block_floats, reinterpret_cast<const uint16_t*>(pool.block_data(ids[b])),
                     block_floats);
    block_data[b] = widened + b * block_floats;
  }
}

void PagedAttention::run_item_reference(const AttentionArgs& args, size_t item, size_t worker) noexcept {
  const StepSequence& seq = args.batch->seqs[item / num_kv_heads_];
  const auto kv_head = static_cast<uint32_t>(item % num_kv_heads_);
  SequenceKv& kv = *seq.kv;
  float* scores = scratch_[worker].data();
  gather_blocks(kv, args.layer, kv_head, worker);
  const float* const* block_data = block_data_[worker].data();
  const size_t block_size = kv.layout().block_size;
  const size_t hd = head_dim_;
  const size_t row = size_t{num_heads_} * hd;  // q / out stride per token
  const size_t num_slots = kv.num_slots(args.layer, kv_head);
  const size_t n = seq.num_tokens;

  for (size_t i = 0; i < n; ++i) {
    const size_t token = seq.first_token + i;
    // The step's tokens are the last n slots, so token i sees everything before the chunk and
    // the chunk up to itself. After pruning num_slots < position + 1: slots, not positions.
    const size_t visible = num_slots - n + i + 1;
    const float* q = args.q + token * row + size_t{kv_head} * group_ * hd;
    float* out = args.out + token * row + size_t{kv_head} * group_ * hd;

    // Pass 1: scaled scores, block by block (K[block_size][head_dim] at the block's start).
    for (size_t b = 0, slot = 0; slot < visible; ++b) {
      const float* k = block_data[b];
      const size_t count = std::min(block_size, visible - slot);
      for (size_t j = 0; j < count; ++j, ++slot) {
        for (size_t g = 0; g < group_; ++g) {
          scores[g * row_stride_ + slot] = dot(q + g * hd, k + j * hd, hd) * scale_;
        }
      }
    }
    // Softmax per query head (two-pass: exact max, fp32).
    for (size_t g = 0; g < group_; ++g) {
      float* s = scores + g * row_stride_;
      const float max_score = *std::max_element(s, s + visible);
      float sum = 0.0f;
      for (size_t j = 0; j < visible; ++j) {
        s[j] = std::exp(s[j] - max_score);
        sum += s[j];
      }
      const float inv_sum = 1.0f / sum;
      for (size_t j = 0; j < visible; ++j) s[j] *= inv_sum;
    }
    // Pass 2: out = sum_j p_j V_j (V[block_size][head_dim] follows K in each block).
    for (size_t g = 0; g < group_; ++g) std::fill(out + g * hd, out + (g + 1) * hd, 0.0f);
    for (size_t b = 0, slot = 0; slot < visible; ++b) {
      const float* v = block_data[b] + block_size * hd;
      const size_t count = std::min(block_size, visible - slot);
      for (size_t j = 0; j < count; ++j, ++slot) {
        for (size_t g = 0; g < group_; ++g) {
          axpy(out + g * hd, scores[g * row_stride_ + slot], v + j * hd, hd);
        }
      }
    }

    record_stats(args, seq, kv_head, token, visible, scores, row_stride_, nullptr);
  }
}

void PagedAttention::record_stats(const AttentionArgs& args, const StepSequence& seq, uint32_t kv_head,
                                  size_t token, size_t visible, const float* probs, size_t stride,
                                  const float* inv_sum) noexcept {
  // Statistics for prompt queries only, and only the ones the sequence asked for: decode
  // tokens, sequences that did not ask and rows that feed no requested statistic skip this.
  if (!seq.stats) return;
  const Pos pos = args.batch->positions[token];
  const StatsRequest& req = *seq.stats;
  if (pos >= req.prompt_len) return;
  const bool accumulated = req.wants(SlotStat::kAccumulated);
  const bool window = req.wants(SlotStat::kWindowSum) && pos >= req.prompt_len - req.window;
  const bool last_row = req.wants(SlotStat::kLastRow) && pos == req.prompt_len - 1;
  if (!accumulated && !window && !last_row) return;
  // The list's statistics are one array, slot after slot: walk it directly.
  SequenceKv& kv = *seq.kv;
  float* stats = kv.slot_stats(args.layer, kv_head, 0);
  const size_t per_slot = kv.stats_per_slot();
  const auto stat = [&](SlotStat st, size_t g) { return stats + kv.stat_offset(st) + g; };
  for (size_t g = 0; g < group_; ++g) {
    const float* p = probs + g * stride;
    const float inv = inv_sum ? inv_sum[g] : 1.0f;  // x * 1.0f == x
    const auto add_row = [&](SlotStat s) {
      float* st = stat(s, g);
      for (size_t j = 0; j < visible; ++j) st[j * per_slot] += p[j] * inv;
    };
    if (accumulated) add_row(SlotStat::kAccumulated);
    if (window) add_row(SlotStat::kWindowSum);
    if (last_row) {
      float* st = stat(SlotStat::kLastRow, g);
      for (size_t j = 0; j < visible; ++j) st[j * per_slot] = p[j] * inv;
    }
  }
}

void PagedAttention::run_item(const AttentionArgs& args, size_t item, size_t worker) noexcept {
  if constexpr (!kHaveAvx2) {
    run_item_reference(args, item, worker);
  } else {
#if defined(__AVX2__) && defined(__FMA__)
  if (head_dim_ % 8 != 0) return run_item_reference(args, item, worker);
  const StepSequence& seq = args.batch->seqs[item / num_kv_heads_];
  const auto kv_head = static_cast<uint32_t>(item % num_kv_heads_);
  SequenceKv& kv = *seq.kv;
  float* scores = scratch_[worker].data();
  gather_blocks(kv, args.layer, kv_head, worker);
  const KvBlocks blocks{block_data_[worker].data(), kv.blocks(args.layer, kv_head).size(), kv.layout().block_size,
                       head_dim_};
  const size_t hd = head_dim_;
  const size_t row = size_t{num_heads_} * hd;
  const size_t num_slots = kv.num_slots(args.layer, kv_head);
  const size_t n = seq.num_tokens;

  // The first blocks of each pass; later tiles of a prefill chunk find them in L2.
  prefetch_first(blocks, 0);
  prefetch_first(blocks, 1);
  for (size_t i0 = 0; i0 < n; i0 += tile_tokens_) {
    const size_t tokens = std::min(tile_tokens_, n - i0);
    const size_t token0 = seq.first_token + i0;
    const size_t head0 = size_t{kv_head} * group_ * hd;
    // Token i0 + i sees everything before the chunk and the chunk up to itself.
    const size_t rows = tokens * group_;
    float* inv_sum = scores + tile_tokens_ * group_ * row_stride_;
    const Tile tile{args.q + token0 * row + head0,
                    args.out + token0 * row + head0,
                    scores,
                    inv_sum,
                    row_stride_,
                    row,
                    group_,
                    hd,
                    num_slots - n + i0 + 1,
                    rows};
    // Pass 1: scaled scores over the K blocks, once for the whole tile.
    if (hd == 8)
      tile_scores_hd8(tile, blocks, scale_);
    else
      tile_scores_dot4(tile, blocks, scale_);
    for (size_t r = 0; r < rows; ++r) inv_sum[r] = softmax_unnormalized(tile.p(r), tile.visible(r));
    // Pass 2: out = sum_j p_j V_j over the V blocks, 32 floats of each row at a time at most.
    for (size_t d = 0; d < hd;) {
      const size_t nv = std::min<size_t>(4, (hd - d) / 8);
      switch (nv) {
        case 4:
          tile_weighted_sum<4>(tile, blocks, d);
          break;
        case 3:
          tile_weighted_sum<3>(tile, blocks, d);
          break;
        case 2:
          tile_weighted_sum<2>(tile, blocks, d);
          break;
        default:
          tile_weighted_sum<1>(tile, blocks, d);
          break;
      }
      d += 8 * nv;
    }
    for (size_t i = 0; i < tokens; ++i) {
      record_stats(args, seq, kv_head, token0 + i, tile.visible(i * group_), tile.p(i * group_), row_stride_,
                   inv_sum + i * group_);
    }
  }
#endif
  }
}

void PagedAttention::run_range(const AttentionArgs& args, size_t begin, size_t end,
                               size_t worker) noexcept {
  PKV_DCHECK(worker < scratch_.size());
  for (size_t item = begin; item < end; ++item) run_item(args, item, worker);
}

void PagedAttention::run_reference(const AttentionArgs& args) {
  PKV_DCHECK(!scratch_.empty());
  for (size_t item = 0; item < num_work_items(*args.batch); ++item) run_item_reference(args, item, 0);
}

void PagedAttention::run_serial(const AttentionArgs& args) {
  run_range(args, 0, num_work_items(*args.batch), 0);
}

void PagedAttention::run_parallel(const AttentionArgs& args, tbb::task_arena& arena) {
  PKV_CHECK(static_cast<size_t>(arena.max_concurrency()) <= scratch_.size(),
            "arena of {} threads, scratch for {}", arena.max_concurrency(), scratch_.size());
  const size_t items = num_work_items(*args.batch);
  arena.execute([&] {
    // Grain 1: a prefill chunk's items cost hundreds of times a decode token's, so let the
    // auto partitioner split down to single items where stealing needs it.
    tbb::parallel_for(tbb::blocked_range<size_t>(0, items, 1), [&](const tbb::blocked_range<size_t>& r) {
      const auto worker = static_cast<size_t>(tbb::this_task_arena::current_thread_index());
      run_range(args, r.begin(), r.end(), worker);
    });
  });
}

}  // namespace prunekv
