#include "model/transformer.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "common/check.h"
#include "common/error.h"
#include "common/log.h"
#include "model/attention.h"
#include "model/blas_info.h"
#include "model/ops.h"

namespace prunekv {

namespace {

// GEMM tasks: (token block, output-row chunk). matmul_rows gives the same bits however the
// product is split, so the split only has to be fast: a task's weight rows fit in L2 and its
// token rows too, and a product too small to pay for a task runs inline.
constexpr size_t kGemmTokens = 48;                // x rows per task (matmul_rows' own token block)
constexpr size_t kGemmWeightsPerTask = 64 * 1024; // ~256 KiB of W per task
constexpr size_t kGemmInlineMacs = 256 * 1024;    // below this, one call on the engine thread

size_t gemm_chunk_rows(size_t in, size_t out) {
  const size_t rows = std::max<size_t>(4, kGemmWeightsPerTask / std::max<size_t>(in, 1) / 4 * 4);
  return std::min(out, rows);
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

  // y[n][out] = x[n][in] W^T, split into (token block, row chunk) tasks over the arena.
  void matmul(float* y, const float* x, const float* w, size_t n, size_t in, size_t out) {
    if (n * in * out < kGemmInlineMacs) {
      matmul_rows(y, x, w, n, in, out, 0, out);
      return;
    }
    const size_t rows = gemm_chunk_rows(in, out);
    const size_t row_chunks = (out + rows - 1) / rows;
    const size_t token_blocks = (n + kGemmTokens - 1) / kGemmTokens;
    auto run = [&](size_t task) {
      const size_t t0 = task / row_chunks * kGemmTokens;
      const size_t r0 = task % row_chunks * rows;
      matmul_rows(y + t0 * out, x + t0 * in, w, std::min(kGemmTokens, n - t0), in, out, r0, std::min(out, r0 + rows));
    };
    if (num_threads == 1) {
      for (size_t task = 0; task < token_blocks * row_chunks; ++task) run(task);
      return;
    }
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, token_blocks * row_chunks, 1),
                        [&](const tbb::blocked_range<size_t>& r) {
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
  s.attention.reserve(batch);

  // Token embeddings, and each token's RoPE angles (shared by every layer and head).
  s.for_each_token(T, [&](size_t t) {
    const float* row = model_.token_embedding + static_cast<size_t>(batch.tokens[t]) * dim;
    std::copy(row, row + dim, s.x.data() + t * dim);
    rope_angles(s.rope_cos.data() + t * half, s.rope_sin.data() + t * half, batch.positions[t], hd,
                c.rope_theta);
  });

  for (uint32_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& w = model_.layers[l];

    // Attention: norm, QKV projections over every token of the step, RoPE at each position.
    s.for_each_token(T, [&](size_t t) {
      rmsnorm(s.xb.data() + t * dim, s.x.data() + t * dim, w.attn_norm, dim, c.norm_eps);
    });
    s.matmul(s.q.data(), s.xb.data(), w.wq, T, dim, dim);
    s.matmul(s.k.data(), s.xb.data(), w.wk, T, dim, kv_dim);
    s.matmul(s.v.data(), s.xb.data(), w.wv, T, dim, kv_dim);
    s.for_each_token(T, [&](size_t t) {
      const float* cos = s.rope_cos.data() + t * half;
      const float* sin = s.rope_sin.data() + t * half;
      rope(s.q.data() + t * dim, c.num_heads, hd, cos, sin, c.rope_layout);
      rope(s.k.data() + t * kv_dim, c.num_kv_heads, hd, cos, sin, c.rope_layout);
    });

    // K/V of the step's tokens go to each list's last num_tokens slots (lists pruned to
    // different lengths put the same token in different slots).
    for (const StepSequence& seq : batch.seqs) {
      for (uint32_t h = 0; h < c.num_kv_heads; ++h) {
        const size_t first_slot = seq.kv->num_slots(l, h) - seq.num_tokens;
        for (size_t i = 0; i < seq.num_tokens; ++i) {
          const size_t t = seq.first_token + i;
          const float* k_src = s.k.data() + t * kv_dim + h * hd;
          const float* v_src = s.v.data() + t * kv_dim + h * hd;
          std::memcpy(seq.kv->key(l, h, first_slot + i), k_src, hd * sizeof(float));
          std::memcpy(seq.kv->value(l, h, first_slot + i), v_src, hd * sizeof(float));
        }
      }
    }

    const AttentionArgs args{&batch, l, s.q.data(), s.att.data()};
    if (s.num_threads == 1) {
      s.attention.run_serial(args);
    } else {
      s.attention.run_parallel(args, s.arena);
    }
    s.matmul(s.xb.data(), s.att.data(), w.wo, T, dim, dim);
    add_in_place(s.x.data(), s.xb.data(), T * dim);

    // MLP: norm, gate and up projections, SwiGLU, down projection, residual.
    s.for_each_token(T, [&](size_t t) {
      rmsnorm(s.xb.data() + t * dim, s.x.data() + t * dim, w.ffn_norm, dim, c.norm_eps);
    });
    s.matmul(s.hb.data(), s.xb.data(), w.w1, T, dim, hidden);
    s.matmul(s.hb2.data(), s.xb.data(), w.w3, T, dim, hidden);
    s.for_each_token(T, [&](size_t t) { swiglu(s.hb.data() + t * hidden, s.hb2.data() + t * hidden, hidden); });
    s.matmul(s.xb.data(), s.hb.data(), w.w2, T, hidden, dim);
    add_in_place(s.x.data(), s.xb.data(), T * dim);
  }

  // Final norm and classifier for the last token of each sampling sequence only.
  const size_t num_sampling = batch.num_sampling();
  s.last.resize(num_sampling * dim);
  size_t row = 0;
  for (const StepSequence& seq : batch.seqs) {
    if (!seq.sample) continue;
    const size_t t = seq.first_token + seq.num_tokens - 1;
    rmsnorm(s.last.data() + row * dim, s.x.data() + t * dim, model_.final_norm, dim, c.norm_eps);
    ++row;
  }
  logits.resize(num_sampling * c.vocab_size);
  s.matmul(logits.data(), s.last.data(), model_.classifier, num_sampling, dim, c.vocab_size);
}

}  // namespace prunekv
