#include "model/transformer.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <mutex>

#include <fmt/format.h>

#include "common/check.h"
#include "common/error.h"
#include "common/log.h"
#include "model/attention.h"
#include "model/blas_info.h"
#include "model/dequantize.h"
#include "model/ops.h"
#include "model/packed_model.h"

namespace prunekv {

namespace {

// GEMM tasks: (token block, panel chunk). gemm_packed gives the same bits however the product
// is split, so the split only has to be fast: a task's x rows stay in L2 (its panels are swept one
// group at a time through L1), a task carries enough weights to pay for itself, and a product too
// small to pay for a task at all runs inline.
constexpr size_t kGemmXBytesPerTask = 256 * 1024;   // x rows per task: 256 KiB of them
constexpr size_t kGemmWeightsPerTask = 64 * 1024;   // ~256 KiB of W per task
// Below this many multiply-adds a product or a layer's attention runs on the engine thread:
// waking a worker costs more than it saves (stories260K decoded 2x slower on two threads).
constexpr size_t kInlineMacs = 256 * 1024;

// How a product is cut into (token block, panel chunk) tasks.
struct GemmSplit {
  size_t tokens;        // per token block, a multiple of the kernel's 6-row tile but the last
  size_t panels;        // per panel chunk
  size_t token_blocks;
  size_t panel_chunks;
};

// Token blocks as large as kGemmXBytesPerTask allows, then evened out. Panel chunks of about
// kGemmWeightsPerTask, at least two tasks per thread, and with one token block (every decode
// step) a multiple of the thread count: the step waits for the slowest thread at each product.
GemmSplit gemm_split(const PackedWeights& w, size_t n, size_t threads) {
  const size_t max_tokens = std::max<size_t>(6, kGemmXBytesPerTask / (w.in() * sizeof(float)) / 6 * 6);
  GemmSplit split{};
  split.token_blocks = (n + max_tokens - 1) / max_tokens;
  split.tokens = std::min(max_tokens, ((n + split.token_blocks - 1) / split.token_blocks + 5) / 6 * 6);
  split.token_blocks = (n + split.tokens - 1) / split.tokens;
  const size_t num_panels = w.num_panels();
  const size_t group = gemm_panel_group(std::min(n, split.tokens));
  size_t chunks = (num_panels * w.in() * kGemmPanel + kGemmWeightsPerTask - 1) / kGemmWeightsPerTask;
  chunks = std::max(chunks, (2 * threads + split.token_blocks - 1) / split.token_blocks);
  if (split.token_blocks == 1) chunks = (chunks + threads - 1) / threads * threads;
  // Whole panel groups per chunk, so no tile is narrower than it could be.
  split.panels = std::min(num_panels, ((num_panels + chunks - 1) / chunks + group - 1) / group * group);
  split.panel_chunks = (num_panels + split.panels - 1) / split.panels;
  return split;
}

// Multiply-adds of one layer's attention (scores and weighted sum over every visible slot), as
// an estimate from the first KV head's slot count: per-head pruning changes it only a little.
size_t attention_macs(const StepBatch& batch, uint32_t layer, const ModelConfig& c) {
  size_t slots = 0;
  for (const StepSequence& seq : batch.seqs) slots += seq.num_tokens * seq.kv->num_slots(layer, 0);
  return 2 * slots * c.num_heads * c.head_dim();
}

void add_in_place(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

struct Transformer::Impl {
  Impl(const ModelConfig& c, int threads)
      : num_threads(threads),
        arena(threads),
        attention(c.num_heads, c.num_kv_heads, c.head_dim(), static_cast<size_t>(threads)) {}

  // outs[part][t][o] = x[t] . W_part[o] for t < n (x rows of w.in() floats).
  void gemm(const ProductWeights& w, const float* x, size_t n, std::initializer_list<GemmOut> outs) {
    if (w.is_packed()) {
      gemm(w.packed, x, n, outs);
    } else {
      gemm(w.quant, x, n, outs);
    }
  }

  // Weights in the file's types: tasks over row ranges, every token in each, about
  // kGemmWeightsPerTask bytes and at least two per thread (quant_row_ranges: whole tiles inside
  // one part, so the split never changes a bit).
  void gemm(const QuantWeights& w, const float* x, size_t n, std::initializer_list<GemmOut> outs) {
    PKV_CHECK(outs.size() == w.num_parts(), "{} outputs for {} parts", outs.size(), w.num_parts());
    const size_t in = w.in(), rows = w.total_out();
    if (num_threads == 1 || n * rows * in < kInlineMacs) {
      quant_matmul(w, x, in, n, outs.begin(), 0, rows);
      return;
    }
    const size_t threads = static_cast<size_t>(num_threads);
    const size_t tasks = std::max<size_t>(2 * threads, (w.num_bytes() + kGemmWeightsPerTask - 1) / kGemmWeightsPerTask);
    const auto ranges = quant_row_ranges(w, (rows + tasks - 1) / tasks);
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, ranges.size(), 1), [&](const tbb::blocked_range<size_t>& r) {
        for (size_t i = r.begin(); i < r.end(); ++i)
          quant_matmul(w, x, in, n, outs.begin(), ranges[i].first, ranges[i].second);
      });
    });
  }

  // Packed F32 weights: split into (token block, panel chunk) tasks over the arena.
  void gemm(const PackedWeights& w, const float* x, size_t n, std::initializer_list<GemmOut> outs) {
    constexpr size_t kMaxParts = 3;  // wq|wk|wv
    PKV_CHECK(outs.size() == w.num_parts() && outs.size() <= kMaxParts, "{} outputs for {} parts", outs.size(),
              w.num_parts());
    const size_t in = w.in();
    if (n * w.macs_per_token() < kInlineMacs) {
      gemm_packed(w, x, in, n, outs.begin(), 0, w.num_panels());
      return;
    }
    const GemmSplit split = gemm_split(w, n, static_cast<size_t>(num_threads));
    const size_t tokens = split.tokens, panels = split.panels, panel_chunks = split.panel_chunks;
    const size_t token_blocks = split.token_blocks;
    auto run = [&](size_t task) {
      const size_t t0 = task / panel_chunks * tokens;
      const size_t p0 = task % panel_chunks * panels;
      GemmOut shifted[kMaxParts];
      for (size_t i = 0; i < outs.size(); ++i) {
        const GemmOut& o = outs.begin()[i];
        shifted[i] = {o.y + t0 * o.ldy, o.ldy};
      }
      gemm_packed(w, x + t0 * in, in, std::min(tokens, n - t0), shifted, p0, std::min(w.num_panels(), p0 + panels));
    };
    const size_t num_tasks = token_blocks * panel_chunks;
    if (num_threads == 1 || num_tasks == 1) {
      for (size_t task = 0; task < num_tasks; ++task) run(task);
      return;
    }
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, num_tasks, 1), [&](const tbb::blocked_range<size_t>& r) {
        for (size_t task = r.begin(); task < r.end(); ++task) run(task);
      });
    });
  }

  // fn(t) for every token t; per-token work, so any split gives the same result.
  template <typename Fn>
  void for_each_token(size_t num_tokens, const Fn& fn) {
    constexpr size_t kTokensPerTask = 32;  // below this the element-wise ops cost less than a task
    if (num_tokens == 0) return;
    if (num_threads == 1 || num_tokens < 2 * kTokensPerTask) {
      for (size_t t = 0; t < num_tokens; ++t) fn(t);
      return;
    }
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, num_tokens, kTokensPerTask),
                        [&](const tbb::blocked_range<size_t>& r) {
                          for (size_t t = r.begin(); t < r.end(); ++t) fn(t);
                        });
    });
  }

  int num_threads;
  tbb::task_arena arena;
  std::shared_ptr<const PackedModel> packed;  // the model's weights, repacked (shared by Transformers)
  PagedAttention attention;

  // Scratch reused across steps (grown, never shrunk): no allocation once warm.
  std::vector<float> x;         // [T][dim] residual stream
  std::vector<float> xb;        // [T][dim] normed input / branch output
  std::vector<float> q;         // [T][dim]
  std::vector<float> k;         // [T][kv_dim]
  std::vector<float> v;         // [T][kv_dim]
  std::vector<float> att;       // [T][dim] attention output before wo
  std::vector<float> hb;        // [T][hidden] gate, then SwiGLU
  std::vector<float> hb2;       // [T][hidden] up
  std::vector<float> rope_cos;  // [T][head_dim/2]
  std::vector<float> rope_sin;  // [T][head_dim/2]
  std::vector<float> last;      // [S][dim] final-normed rows of the sampling tokens
  std::vector<uint32_t> token_seq;  // [T] index into batch.seqs of each token's sequence
};

Transformer::Transformer(const Model& model, int num_threads) : model_(model) {
  if (num_threads < 1) {
    throw ConfigError(fmt::format("threads = {}, expected >= 1", num_threads));
  }
  const ModelConfig& c = model_.config;
  PKV_CHECK(c.num_heads > 0 && c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0 &&
                c.dim % c.num_heads == 0 && c.head_dim() % 2 == 0,
            "model config not validated: dim {} heads {} kv heads {}", c.dim, c.num_heads, c.num_kv_heads);
  PKV_CHECK(model_.layers.size() == c.num_layers);
  // The serial OpenBLAS is linked; pin a threaded one anyway so it never oversubscribes the arena.
  blas_force_single_thread();
  static std::once_flag logged;
  std::call_once(logged, [] { log::get("model")->debug("BLAS: {}", blas_description()); });
  impl_ = std::make_unique<Impl>(c, num_threads);
  impl_->packed = packed_weights(model_);
}

Transformer::~Transformer() = default;

int Transformer::num_threads() const { return impl_->num_threads; }

void Transformer::forward(const StepBatch& batch, std::vector<float>& logits) {
  const ModelConfig& c = model_.config;
  Impl& s = *impl_;
  const size_t T = batch.num_tokens();
  const size_t dim = c.dim;
  const size_t kv_dim = c.kv_dim();
  const size_t hidden = c.hidden_dim;
  const size_t hd = c.head_dim();
  const size_t half = hd / 2;
  PKV_CHECK(batch.positions.size() == T, "{} tokens, {} positions", T, batch.positions.size());
  for (const StepSequence& seq : batch.seqs) {
    PKV_CHECK(seq.kv && seq.num_tokens > 0 && size_t{seq.first_token} + seq.num_tokens <= T,
              "step sequence [{}, +{}) outside the batch's {} tokens", seq.first_token, seq.num_tokens, T);
    PKV_CHECK(seq.kv->layout().num_layers == c.num_layers, "KV layout has {} layers, model {}",
              seq.kv->layout().num_layers, c.num_layers);
  }
  for (size_t t = 0; t < T; ++t) {
    PKV_CHECK(batch.tokens[t] >= 0 && static_cast<uint32_t>(batch.tokens[t]) < c.vocab_size,
              "token {} outside the vocabulary of {}", batch.tokens[t], c.vocab_size);
  }

  for (auto* buf : {&s.x, &s.xb, &s.q, &s.att}) buf->resize(T * dim);
  for (auto* buf : {&s.k, &s.v}) buf->resize(T * kv_dim);
  for (auto* buf : {&s.hb, &s.hb2}) buf->resize(T * hidden);
  for (auto* buf : {&s.rope_cos, &s.rope_sin}) buf->resize(T * half);
  s.token_seq.resize(T);
  for (uint32_t i = 0; i < batch.seqs.size(); ++i) {
    const StepSequence& seq = batch.seqs[i];
    std::fill_n(s.token_seq.begin() + seq.first_token, seq.num_tokens, i);
  }
  s.attention.reserve(batch);

  // Token embeddings, and each token's RoPE angles (shared by every layer and head).
  s.for_each_token(T, [&](size_t t) {
    const WeightView& embedding = model_.token_embedding;
    const size_t token = static_cast<size_t>(batch.tokens[t]);
    if (embedding.is_f32()) {
      const float* row = embedding.f32() + token * dim;
      std::copy(row, row + dim, s.x.data() + t * dim);
    } else {
      dequantize_row(embedding.type, embedding.row(token, dim), s.x.data() + t * dim, dim);
    }
    rope_angles(s.rope_cos.data() + t * half, s.rope_sin.data() + t * half, batch.positions[t], hd,
                c.rope_theta);
  });

  for (uint32_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& w = model_.layers[l];
    const PackedLayer& pw = s.packed->layers[l];

    // Attention: (the previous layer's MLP residual), norm, QKV projections over every token
    // of the step, RoPE at each position.
    s.for_each_token(T, [&](size_t t) {
      if (l > 0) add_in_place(s.x.data() + t * dim, s.xb.data() + t * dim, dim);
      rmsnorm(s.xb.data() + t * dim, s.x.data() + t * dim, w.attn_norm, dim, c.norm_eps);
    });
    s.gemm(pw.qkv, s.xb.data(), T, {{s.q.data(), dim}, {s.k.data(), kv_dim}, {s.v.data(), kv_dim}});
    s.for_each_token(T, [&](size_t t) {
      const float* cos = s.rope_cos.data() + t * half;
      const float* sin = s.rope_sin.data() + t * half;
      rope(s.q.data() + t * dim, c.num_heads, hd, cos, sin, c.rope_layout);
      rope(s.k.data() + t * kv_dim, c.num_kv_heads, hd, cos, sin, c.rope_layout);
      // The token's K/V go to its slot in each list: among the list's last num_tokens slots
      // (lists pruned to different lengths put the same token in different slots). Tokens
      // write disjoint slots, so any split over threads is race-free.
      const StepSequence& seq = batch.seqs[s.token_seq[t]];
      const size_t i = t - seq.first_token;
      for (uint32_t h = 0; h < c.num_kv_heads; ++h) {
        seq.kv->write_kv(l, h, seq.kv->num_slots(l, h) - seq.num_tokens + i, s.k.data() + t * kv_dim + h * hd,
                         s.v.data() + t * kv_dim + h * hd);
      }
    });

    const AttentionArgs args{&batch, l, s.q.data(), s.att.data()};
    if (s.num_threads == 1 || attention_macs(batch, l, c) < kInlineMacs) {
      s.attention.run_serial(args);
    } else {
      s.attention.run_parallel(args, s.arena);
    }
    s.gemm(pw.wo, s.att.data(), T, {{s.xb.data(), dim}});

    // MLP: the attention residual, norm, gate and up projections, SwiGLU, down projection (its
    // residual is added where the next layer, or the final norm, reads x).
    s.for_each_token(T, [&](size_t t) {
      add_in_place(s.x.data() + t * dim, s.xb.data() + t * dim, dim);
      rmsnorm(s.xb.data() + t * dim, s.x.data() + t * dim, w.ffn_norm, dim, c.norm_eps);
    });
    s.gemm(pw.w13, s.xb.data(), T, {{s.hb.data(), hidden}, {s.hb2.data(), hidden}});
    s.for_each_token(T, [&](size_t t) { swiglu(s.hb.data() + t * hidden, s.hb2.data() + t * hidden, hidden); });
    s.gemm(pw.w2, s.hb.data(), T, {{s.xb.data(), dim}});
  }

  // The last layer's MLP residual, final norm and classifier for the last token of each
  // sampling sequence only: no other token's x is read again.
  const size_t num_sampling = batch.num_sampling();
  s.last.resize(num_sampling * dim);
  size_t row = 0;
  for (const StepSequence& seq : batch.seqs) {
    if (!seq.sample) continue;
    const size_t t = seq.first_token + seq.num_tokens - 1;
    add_in_place(s.x.data() + t * dim, s.xb.data() + t * dim, dim);  // n_layers >= 1: validated
    rmsnorm(s.last.data() + row * dim, s.x.data() + t * dim, model_.final_norm, dim, c.norm_eps);
    ++row;
  }
  logits.resize(num_sampling * c.vocab_size);
  s.gemm(s.packed->classifier, s.last.data(), num_sampling, {{logits.data(), c.vocab_size}});
}

}  // namespace prunekv
