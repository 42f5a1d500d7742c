#include "model/attention.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "common/check.h"
#include "memory/slot_stats.h"

namespace prunekv {

namespace {

// Dot product in 8 independent lanes so the compiler vectorises it without -ffast-math; the
// summation order depends only on n, never on the thread.
inline float dot(const float* a, const float* b, size_t n) {
  constexpr size_t kLanes = 8;
  float lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) lanes[l] += a[i + l] * b[i + l];
  }
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (size_t l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

inline void axpy(float* y, float a, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
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

// exp(x) for x <= 0 (Cephes expf: 2^n * poly(r), relative error ~2e-7).
inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline float exp_nonpositive(float x) {
  float buf[8] = {x};
  _mm256_storeu_ps(buf, exp_nonpositive(_mm256_loadu_ps(buf)));
  return buf[0];
}

// s[0, n) = softmax(s): exact max, vector exp, 8-lane sum in a fixed order, scale by 1/sum.
inline void softmax_simd(float* s, size_t n) {
  const size_t n8 = n / 8 * 8;
  __m256 mv = _mm256_set1_ps(s[0]);
  for (size_t j = 0; j < n8; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
  float buf[8];
  _mm256_storeu_ps(buf, mv);
  float max_score = s[0];
  for (float b : buf) max_score = std::max(max_score, b);
  for (size_t j = n8; j < n; ++j) max_score = std::max(max_score, s[j]);
  const __m256 m = _mm256_set1_ps(max_score);
  __m256 sv = _mm256_setzero_ps();
  for (size_t j = 0; j < n8; j += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
    _mm256_storeu_ps(s + j, e);
    sv = _mm256_add_ps(sv, e);
  }
  _mm256_storeu_ps(buf, sv);
  float sum = 0.0f;
  for (float b : buf) sum += b;
  for (size_t j = n8; j < n; ++j) {
    s[j] = exp_nonpositive(s[j] - max_score);
    sum += s[j];
  }
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (size_t j = 0; j < n8; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
  for (size_t j = n8; j < n; ++j) s[j] *= 1.0f / sum;
}

// out[0, 8*NV) = sum_j p[j] * V_j[0, 8*NV) over the visible slots, block by block; the
// accumulators stay in registers for the whole context.
template <int NV>
inline void weighted_sum(float* out, const float* p, const BlockPool& pool, std::span<const BlockId> blocks,
                         size_t block_size, size_t hd, size_t offset, size_t visible) {
  __m256 acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = _mm256_setzero_ps();
  for (size_t b = 0, slot = 0; slot < visible; ++b) {
    const float* vb = reinterpret_cast<const float*>(pool.block_data(blocks[b])) + block_size * hd + offset;
    const size_t count = std::min(block_size, visible - slot);
    for (size_t j = 0; j < count; ++j, ++slot) {
      const __m256 pj = _mm256_broadcast_ss(p + slot);
      for (int v = 0; v < NV; ++v) acc[v] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vb + j * hd + 8 * v), acc[v]);
    }
  }
  for (int v = 0; v < NV; ++v) _mm256_storeu_ps(out + 8 * v, acc[v]);
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
      scratch_(std::max<size_t>(num_workers, 1)) {
  PKV_CHECK(num_kv_heads > 0 && num_heads % num_kv_heads == 0, "{} query heads over {} KV heads",
            num_heads, num_kv_heads);
}

void PagedAttention::reserve(const StepBatch& batch) {
  size_t longest = 0;
  for (const StepSequence& seq : batch.seqs) {
    const KvLayout& layout = seq.kv->layout();
    PKV_CHECK(layout.dtype == KvDtype::kF32 && layout.head_dim == head_dim_ &&
                  layout.num_kv_heads == num_kv_heads_,
              "KV layout (dtype {}, head_dim {}, {} KV heads) does not match the model ({}, {})",
              to_string(layout.dtype), layout.head_dim, layout.num_kv_heads, head_dim_, num_kv_heads_);
    PKV_CHECK(!seq.stats || seq.kv->stats_group() == group_,
              "statistics requested but the sequence carries {} stats per KV head, model has G = {}",
              seq.kv->stats_group(), group_);
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      for (uint32_t h = 0; h < num_kv_heads_; ++h) {
        const size_t slots = seq.kv->num_slots(layer, h);
        PKV_CHECK(slots >= seq.num_tokens, "list ({}, {}) holds {} slots, fewer than the step's {} tokens",
                  layer, h, slots, seq.num_tokens);
        longest = std::max(longest, slots);
      }
    }
  }
  if (longest <= scratch_slots_) return;
  scratch_slots_ = longest;
  for (auto& s : scratch_) s.resize(scratch_slots_ * group_);
}

void PagedAttention::run_item_reference(const AttentionArgs& args, size_t item, float* scores) noexcept {
  const StepSequence& seq = args.batch->seqs[item / num_kv_heads_];
  const auto kv_head = static_cast<uint32_t>(item % num_kv_heads_);
  SequenceKv& kv = *seq.kv;
  const BlockPool& pool = kv.pool();
  const size_t block_size = kv.layout().block_size;
  const size_t hd = head_dim_;
  const size_t row = size_t{num_heads_} * hd;  // q / out stride per token
  const std::span<const BlockId> blocks = kv.blocks(args.layer, kv_head);
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
      const auto* k = reinterpret_cast<const float*>(pool.block_data(blocks[b]));
      const size_t count = std::min(block_size, visible - slot);
      for (size_t j = 0; j < count; ++j, ++slot) {
        for (size_t g = 0; g < group_; ++g) {
          scores[g * scratch_slots_ + slot] = dot(q + g * hd, k + j * hd, hd) * scale_;
        }
      }
    }
    // Softmax per query head (two-pass: exact max, fp32).
    for (size_t g = 0; g < group_; ++g) {
      float* s = scores + g * scratch_slots_;
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
      const float* v = reinterpret_cast<const float*>(pool.block_data(blocks[b])) + block_size * hd;
      const size_t count = std::min(block_size, visible - slot);
      for (size_t j = 0; j < count; ++j, ++slot) {
        for (size_t g = 0; g < group_; ++g) {
          axpy(out + g * hd, scores[g * scratch_slots_ + slot], v + j * hd, hd);
        }
      }
    }

    record_stats(args, seq, kv_head, token, visible, scores);
  }
}

void PagedAttention::record_stats(const AttentionArgs& args, const StepSequence& seq, uint32_t kv_head,
                                  size_t token, size_t visible, const float* scores) noexcept {
  // Statistics for prompt queries only; decode tokens and sequences that did not ask skip
  // this entirely.
  if (!seq.stats) return;
  SequenceKv& kv = *seq.kv;
  const Pos pos = args.batch->positions[token];
  const StatsRequest& req = *seq.stats;
  if (pos >= req.prompt_len) return;
  const bool in_window = pos >= req.prompt_len - req.window;
  const bool last_row = pos == req.prompt_len - 1;
  constexpr auto kAcc = static_cast<size_t>(SlotStat::kAccumulated);
  constexpr auto kWin = static_cast<size_t>(SlotStat::kWindowSum);
  constexpr auto kLast = static_cast<size_t>(SlotStat::kLastRow);
  for (size_t j = 0; j < visible; ++j) {
    float* st = kv.slot_stats(args.layer, kv_head, j);
    for (size_t g = 0; g < group_; ++g) {
      const float p = scores[g * scratch_slots_ + j];
      st[kAcc * group_ + g] += p;
      if (in_window) st[kWin * group_ + g] += p;
      if (last_row) st[kLast * group_ + g] = p;
    }
  }
}

void PagedAttention::run_item(const AttentionArgs& args, size_t item, float* scores) noexcept {
  if constexpr (!kHaveAvx2) {
    run_item_reference(args, item, scores);
  } else {
#if defined(__AVX2__) && defined(__FMA__)
  if (head_dim_ % 8 != 0) return run_item_reference(args, item, scores);
  const StepSequence& seq = args.batch->seqs[item / num_kv_heads_];
  const auto kv_head = static_cast<uint32_t>(item % num_kv_heads_);
  SequenceKv& kv = *seq.kv;
  const BlockPool& pool = kv.pool();
  const size_t block_size = kv.layout().block_size;
  const size_t hd = head_dim_;
  const size_t row = size_t{num_heads_} * hd;
  const std::span<const BlockId> blocks = kv.blocks(args.layer, kv_head);
  const size_t num_slots = kv.num_slots(args.layer, kv_head);
  const size_t n = seq.num_tokens;

  for (size_t i = 0; i < n; ++i) {
    const size_t token = seq.first_token + i;
    const size_t visible = num_slots - n + i + 1;
    const float* q = args.q + token * row + size_t{kv_head} * group_ * hd;
    float* out = args.out + token * row + size_t{kv_head} * group_ * hd;

    // Pass 1: scaled scores, four slots at a time within each block (K block pointers direct).
    for (size_t b = 0, slot = 0; slot < visible; ++b) {
      const auto* k = reinterpret_cast<const float*>(pool.block_data(blocks[b]));
      const size_t count = std::min(block_size, visible - slot);
      for (size_t g = 0; g < group_; ++g) {
        const float* qg = q + g * hd;
        float* s = scores + g * scratch_slots_ + slot;
        size_t j = 0;
        for (; j + 4 <= count; j += 4) {
          const float* kj = k + j * hd;
          _mm_storeu_ps(s + j, _mm_mul_ps(dot4(qg, kj, kj + hd, kj + 2 * hd, kj + 3 * hd, hd), _mm_set1_ps(scale_)));
        }
        for (; j < count; ++j) {
          const float* kj = k + j * hd;
          s[j] = _mm_cvtss_f32(dot4(qg, kj, kj, kj, kj, hd)) * scale_;
        }
      }
      slot += count;
    }
    for (size_t g = 0; g < group_; ++g) softmax_simd(scores + g * scratch_slots_, visible);
    // Pass 2: out = sum_j p_j V_j in chunks of up to 32 floats held in registers.
    for (size_t g = 0; g < group_; ++g) {
      const float* p = scores + g * scratch_slots_;
      for (size_t d = 0; d < hd;) {
        const size_t nv = std::min<size_t>(4, (hd - d) / 8);
        float* o = out + g * hd + d;
        switch (nv) {
          case 4: weighted_sum<4>(o, p, pool, blocks, block_size, hd, d, visible); break;
          case 3: weighted_sum<3>(o, p, pool, blocks, block_size, hd, d, visible); break;
          case 2: weighted_sum<2>(o, p, pool, blocks, block_size, hd, d, visible); break;
          default: weighted_sum<1>(o, p, pool, blocks, block_size, hd, d, visible); break;
        }
        d += 8 * nv;
      }
    }
    record_stats(args, seq, kv_head, token, visible, scores);
  }
#endif
  }
}

void PagedAttention::run_range(const AttentionArgs& args, size_t begin, size_t end,
                               size_t worker) noexcept {
  PKV_DCHECK(worker < scratch_.size());
  float* scores = scratch_[worker].data();
  for (size_t item = begin; item < end; ++item) run_item(args, item, scores);
}

void PagedAttention::run_reference(const AttentionArgs& args) {
  PKV_DCHECK(!scratch_.empty());
  float* scores = scratch_[0].data();
  for (size_t item = 0; item < num_work_items(*args.batch); ++item) run_item_reference(args, item, scores);
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
