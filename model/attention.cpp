#include "model/attention.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

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

void PagedAttention::run_item(const AttentionArgs& args, size_t item, float* scores) noexcept {
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

    // Statistics for prompt queries only; decode tokens and sequences that did not ask skip
    // this entirely.
    if (!seq.stats) continue;
    const Pos pos = args.batch->positions[token];
    const StatsRequest& req = *seq.stats;
    if (pos >= req.prompt_len) continue;
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
}

void PagedAttention::run_range(const AttentionArgs& args, size_t begin, size_t end,
                               size_t worker) noexcept {
  PKV_DCHECK(worker < scratch_.size());
  float* scores = scratch_[worker].data();
  for (size_t item = begin; item < end; ++item) run_item(args, item, scores);
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
