// The forward step's micro-benchmarks, each beside a plain reference path: the weight GEMM at one
// row (OpenBLAS sgemm vs the engine's packed kernel) and at n rows, paged vs contiguous attention,
// and whole steps (prefill and decode) on synthetic:stories15M and the real stories260K.
// Items = tokens, so items_per_second = tok/s.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "common/check.h"
#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "model/attention.h"
#include "model/gemm.h"
#include "model/model.h"
#include "model/ops.h"
#include "model/step_batch.h"
#include "model/transformer.h"

namespace prunekv {
namespace {

std::vector<float> random_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// ---- GEMM path: y[n][out] = x[n][in] W^T, stories15M shapes (wq 288x288, w1 768x288). ----

void BM_Gemm_SgemmOneRow(benchmark::State& state) {
  const auto in = size_t(state.range(0)), out = size_t(state.range(1));
  const auto x = random_floats(in, 1), w = random_floats(in * out, 2);
  std::vector<float> y(out);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 1, int(out), int(in), 1.0f, x.data(), int(in), w.data(),
                int(in), 0.0f, y.data(), int(out));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations() * in * out * sizeof(float)));
}
BENCHMARK(BM_Gemm_SgemmOneRow)->Args({288, 288})->Args({288, 768})->Args({288, 32000});

// The engine's path at one row: the packed GEMM (model/gemm.h), streaming W once.
void BM_Gemm_SgemvOneRow(benchmark::State& state) {
  const auto in = size_t(state.range(0)), out = size_t(state.range(1));
  const auto x = random_floats(in, 1), w = random_floats(in * out, 2);
  const GemmPart part{w.data(), out};
  const PackedWeights packed({&part, 1}, in);
  std::vector<float> y(out);
  const GemmOut target{y.data(), out};
  for (auto _ : state) {
    gemm_packed(packed, x.data(), in, 1, &target, 0, packed.num_panels());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations() * in * out * sizeof(float)));
}
BENCHMARK(BM_Gemm_SgemvOneRow)->Args({288, 288})->Args({288, 768})->Args({288, 32000})->Args({768, 32000});

// n rows through the engine's GEMM (one thread): per-row cost falls as W is reused across rows.
// Args: n, in, out; GFLOPs = 2 n in out per CPU second (one core here peaks near 100).
void BM_Gemm_SgemmRows(benchmark::State& state) {
  const auto n = size_t(state.range(0));
  const auto in = size_t(state.range(1)), out = size_t(state.range(2));
  const auto x = random_floats(n * in, 1), w = random_floats(in * out, 2);
  const GemmPart part{w.data(), out};
  const PackedWeights packed({&part, 1}, in);
  std::vector<float> y(n * out);
  const GemmOut target{y.data(), out};
  for (auto _ : state) {
    gemm_packed(packed, x.data(), in, n, &target, 0, packed.num_panels());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations() * n));
  state.counters["GFLOPs"] = benchmark::Counter(double(state.iterations()) * 2.0 * double(n * in * out),
                                                benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Gemm_SgemmRows)
    ->Args({2, 288, 768})->Args({8, 288, 768})->Args({32, 288, 768})->Args({64, 288, 768})
    ->Args({16, 768, 2048})->Args({64, 768, 2048})->Args({64, 2048, 768})->Args({16, 288, 32000})
    ->Args({64, 288, 32000});

// OpenBLAS sgemm on the same shapes: what the kernel is measured against (it repacks W per call
// and its rounding depends on n, which is why the engine does not use it).
void BM_Gemm_OpenblasRows(benchmark::State& state) {
  const auto n = size_t(state.range(0));
  const auto in = size_t(state.range(1)), out = size_t(state.range(2));
  const auto x = random_floats(n * in, 1), w = random_floats(in * out, 2);
  std::vector<float> y(n * out);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(out), int(in), 1.0f, x.data(), int(in), w.data(),
                int(in), 0.0f, y.data(), int(out));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations() * n));
  state.counters["GFLOPs"] = benchmark::Counter(double(state.iterations()) * 2.0 * double(n * in * out),
                                                benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Gemm_OpenblasRows)->Args({64, 288, 768})->Args({16, 768, 2048})->Args({64, 768, 2048})->Args({64, 2048, 768});

// The plain loops over [out][in] the kernel is tested against, for scale.
void BM_Gemm_ReferenceRows(benchmark::State& state) {
  const auto n = size_t(state.range(0)), in = size_t(288), out = size_t(768);
  const auto x = random_floats(n * in, 1), w = random_floats(in * out, 2);
  std::vector<float> y(n * out);
  for (auto _ : state) {
    matmul_rows_reference(y.data(), x.data(), w.data(), n, in, out, 0, out);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations() * n));
}
BENCHMARK(BM_Gemm_ReferenceRows)->Arg(64);

// ---- Attention: decode of `batch` sequences with `context` slots, stories15M heads. ----

constexpr uint32_t kHeads = 6, kKvHeads = 6, kHeadDim = 48;

// Random K/V in every slot of each KV head's list of layer 0.
void fill_random_kv(SequenceKv& seq, uint32_t kv_heads, uint32_t head_dim, size_t slots, uint64_t seed) {
  for (uint32_t h = 0; h < kv_heads; ++h) {
    const auto kv = random_floats(2 * slots * head_dim, seed + h);
    for (size_t slot = 0; slot < slots; ++slot)
      seq.write_kv(0, h, slot, kv.data() + slot * head_dim, kv.data() + (slots + slot) * head_dim);
  }
}

// Times the serial kernel over `batch` (layer 0) with random queries; items = `items`.
void time_attention(benchmark::State& state, const StepBatch& batch, uint32_t heads, uint32_t kv_heads,
                    uint32_t head_dim, size_t items) {
  const auto q = random_floats(batch.num_tokens() * heads * head_dim, 7);
  std::vector<float> out(q.size());
  PagedAttention attention(heads, kv_heads, head_dim, 1);
  attention.reserve(batch);
  const AttentionArgs args{&batch, 0, q.data(), out.data()};
  for (auto _ : state) {
    attention.run_serial(args);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations() * items));
}

// Decode of `batch` sequences (state.range(0)) with `context` slots (range(1)) of random K/V.
void run_paged_decode(benchmark::State& state, uint32_t heads, uint32_t kv_heads, uint32_t head_dim,
                      KvDtype dtype = KvDtype::kF32) {
  const auto batch_size = size_t(state.range(0)), context = size_t(state.range(1));
  KvLayout layout{1, kv_heads, head_dim, kDefaultBlockSize, dtype};
  BlockPool pool(layout, batch_size * kv_heads * (context / kDefaultBlockSize + 1));
  std::vector<std::unique_ptr<SequenceKv>> seqs;
  StepBatch batch;
  std::vector<Pos> positions(context);
  for (size_t p = 0; p < context; ++p) positions[p] = Pos(p);
  const TokenId token = 0;
  for (size_t s = 0; s < batch_size; ++s) {
    seqs.push_back(std::make_unique<SequenceKv>(pool));
    PKV_CHECK(seqs.back()->append(positions), "benchmark pool too small");
    fill_random_kv(*seqs.back(), kv_heads, head_dim, context, s * 100);
    batch.add(seqs.back().get(), {&token, 1}, Pos(context - 1), true);
  }
  time_attention(state, batch, heads, kv_heads, head_dim, batch_size);
}

void BM_Attention_PagedDecode(benchmark::State& state) { run_paged_decode(state, kHeads, kKvHeads, kHeadDim); }
BENCHMARK(BM_Attention_PagedDecode)->Args({1, 256})->Args({32, 256})->Args({32, 1024});

// The same over an f16 cache: half the bytes to read, widened to f32 on the way.
void BM_Attention_PagedDecodeF16(benchmark::State& state) {
  run_paged_decode(state, kHeads, kKvHeads, kHeadDim, KvDtype::kF16);
}
BENCHMARK(BM_Attention_PagedDecodeF16)->Args({32, 256})->Args({32, 1024});

// The same work over one contiguous K/V array per (sequence, head): the cost of paging.
void BM_Attention_ContiguousDecode(benchmark::State& state) {
  const auto batch_size = size_t(state.range(0)), context = size_t(state.range(1));
  const auto keys = random_floats(batch_size * kKvHeads * context * kHeadDim, 3);
  const auto values = random_floats(batch_size * kKvHeads * context * kHeadDim, 4);
  const auto q = random_floats(batch_size * kHeads * kHeadDim, 7);
  std::vector<float> out(q.size()), scores(context);
  const float scale = 1.0f / std::sqrt(float(kHeadDim));
  for (auto _ : state) {
    for (size_t s = 0; s < batch_size; ++s) {
      for (size_t h = 0; h < kHeads; ++h) {
        const float* qh = q.data() + (s * kHeads + h) * kHeadDim;
        const float* k = keys.data() + (s * kKvHeads + h) * context * kHeadDim;
        const float* v = values.data() + (s * kKvHeads + h) * context * kHeadDim;
        float* o = out.data() + (s * kHeads + h) * kHeadDim;
        for (size_t j = 0; j < context; ++j) {
          float dot = 0.0f;
          for (size_t i = 0; i < kHeadDim; ++i) dot += qh[i] * k[j * kHeadDim + i];
          scores[j] = dot * scale;
        }
        softmax(scores.data(), context);
        std::fill(o, o + kHeadDim, 0.0f);
        for (size_t j = 0; j < context; ++j) {
          for (size_t i = 0; i < kHeadDim; ++i) o[i] += scores[j] * v[j * kHeadDim + i];
        }
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations() * batch_size));
}
BENCHMARK(BM_Attention_ContiguousDecode)->Args({1, 256})->Args({32, 256})->Args({32, 1024});

// Prefill of one `prompt`-token sequence in one step (every token attends causally), with
// `heads` query heads over `kv_heads` KV heads of `head_dim`; stats: 0 none, 1 every statistic
// (H2O's request), 2 the last prompt row only (DBudgetKV's). Items = prompt tokens.
void BM_Attention_PagedPrefill(benchmark::State& state) {
  const auto heads = uint32_t(state.range(0)), kv_heads = uint32_t(state.range(1));
  const auto head_dim = uint32_t(state.range(2));
  const auto prompt = size_t(state.range(3));
  const auto stats = int(state.range(4));
  KvLayout layout{1, kv_heads, head_dim, kDefaultBlockSize, KvDtype::kF32};
  BlockPool pool(layout, kv_heads * (prompt / kDefaultBlockSize + 1));
  SequenceKv seq(pool, stats ? heads / kv_heads : 0);
  std::vector<Pos> positions(prompt);
  for (size_t p = 0; p < prompt; ++p) positions[p] = Pos(p);
  PKV_CHECK(seq.append(positions), "benchmark pool too small");
  fill_random_kv(seq, kv_heads, head_dim, prompt, 11);
  std::optional<StatsRequest> request;
  if (stats == 1) request = StatsRequest{Pos(prompt), 8};
  if (stats == 2) request = StatsRequest{Pos(prompt), 8, stat_bit(SlotStat::kLastRow)};
  const std::vector<TokenId> tokens(prompt, 0);
  StepBatch batch;
  batch.add(&seq, tokens, 0, true, request);
  time_attention(state, batch, heads, kv_heads, head_dim, prompt);
}
// stories260K (8 heads over 4 KV heads of 8), then stories15M (6 heads of 48).
BENCHMARK(BM_Attention_PagedPrefill)
    ->ArgNames({"heads", "kv", "hd", "prompt", "stats"})
    ->Args({8, 4, 8, 256, 0})
    ->Args({8, 4, 8, 256, 1})
    ->Args({8, 4, 8, 256, 2})
    ->Args({6, 6, 48, 256, 0})
    ->Args({6, 6, 48, 256, 2});

// Decode of `batch` sequences with `context` slots in stories260K's shape (8 query heads over 4
// KV heads of 8): the G = 2 query rows of a KV head share one pass over its blocks.
void BM_Attention_PagedDecodeGqa(benchmark::State& state) { run_paged_decode(state, 8, 4, 8); }
BENCHMARK(BM_Attention_PagedDecodeGqa)->Args({1, 256})->Args({8, 256});

// ---- Whole steps. ----

std::string stories260k_path() {
  const char* dir = std::getenv("PRUNEKV_SHARED_DIR");
  return std::string(dir ? dir : "../shared") + "/models/stories260K.bin";
}

std::unique_ptr<Model> load_bench_model(int which) {
  if (which == 0) return load_model("synthetic:stories15M");
  LoadOptions options;
  return std::filesystem::exists(stories260k_path()) ? load_model(stories260k_path(), options) : nullptr;
}

int bench_threads() {
  const char* threads = std::getenv("PRUNEKV_BENCH_THREADS");
  return threads ? std::atoi(threads) : 2;
}

KvLayout layout_for(const Model& model) {
  return KvLayout{model.config.num_layers, model.config.num_kv_heads, model.config.head_dim(), kDefaultBlockSize,
                  KvDtype::kF32};
}

// Args: model (0 = synthetic:stories15M, 1 = stories260K), batch, prompt length. One step
// prefills `batch` prompts; items = prompt tokens.
void BM_Forward_Prefill(benchmark::State& state) {
  auto model = load_bench_model(int(state.range(0)));
  if (!model) return state.SkipWithError("stories260K.bin not found (set PRUNEKV_SHARED_DIR)");
  const auto batch_size = size_t(state.range(1)), prompt_len = size_t(state.range(2));
  const KvLayout layout = layout_for(*model);
  BlockPool pool(layout, layout.num_lists() * batch_size * (prompt_len / layout.block_size + 1));
  Transformer transformer(*model, bench_threads());
  std::vector<TokenId> prompt(prompt_len);
  for (size_t i = 0; i < prompt_len; ++i) prompt[i] = TokenId(i % model->config.vocab_size);
  std::vector<Pos> positions(prompt_len);
  for (size_t i = 0; i < prompt_len; ++i) positions[i] = Pos(i);
  std::vector<float> logits;
  StepBatch batch;
  for (auto _ : state) {
    std::vector<SequenceKv> seqs;
    seqs.reserve(batch_size);
    batch.clear();
    for (size_t s = 0; s < batch_size; ++s) {
      seqs.emplace_back(pool);
      PKV_CHECK(seqs.back().append(positions), "benchmark pool too small");
      batch.add(&seqs.back(), prompt, 0, true);
    }
    transformer.forward(batch, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations() * batch_size * prompt_len));
  state.SetLabel(model->config.name);
}
BENCHMARK(BM_Forward_Prefill)
    ->Args({0, 1, 128})->Args({0, 64, 32})->Args({1, 1, 128})->Args({1, 64, 32})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: model, batch, context. Each iteration decodes one token for each of `batch` sequences
// whose context grows from `context` to 2 * context, then the sequences restart (untimed).
void BM_Forward_Decode(benchmark::State& state) {
  auto model = load_bench_model(int(state.range(0)));
  if (!model) return state.SkipWithError("stories260K.bin not found (set PRUNEKV_SHARED_DIR)");
  const auto batch_size = size_t(state.range(1)), context = size_t(state.range(2));
  const KvLayout layout = layout_for(*model);
  BlockPool pool(layout, layout.num_lists() * batch_size * (2 * context / layout.block_size + 2));
  Transformer transformer(*model, bench_threads());
  std::vector<SequenceKv> seqs;
  seqs.reserve(batch_size);
  for (size_t s = 0; s < batch_size; ++s) seqs.emplace_back(pool);
  std::vector<float> logits;
  StepBatch batch;
  std::vector<Pos> positions(context);
  for (size_t i = 0; i < context; ++i) positions[i] = Pos(i);
  // Fills every sequence with `context` slots of K/V (a prefill step, untimed).
  auto restart = [&] {
    batch.clear();
    const std::vector<TokenId> prompt(context, 5);
    for (auto& seq : seqs) {
      seq.free_all();
      PKV_CHECK(seq.append(positions), "benchmark pool too small");
      batch.add(&seq, prompt, 0, true);
    }
    transformer.forward(batch, logits);
  };
  restart();
  Pos pos = Pos(context);
  const TokenId token = 7;
  for (auto _ : state) {
    if (pos == Pos(2 * context)) {
      state.PauseTiming();
      restart();
      pos = Pos(context);
      state.ResumeTiming();
    }
    batch.clear();
    for (auto& seq : seqs) {
      PKV_CHECK(seq.append({&pos, 1}), "benchmark pool too small");
      batch.add(&seq, {&token, 1}, pos, true);
    }
    transformer.forward(batch, logits);
    benchmark::DoNotOptimize(logits.data());
    ++pos;
  }
  state.SetItemsProcessed(int64_t(state.iterations() * batch_size));
  state.SetLabel(model->config.name);
}
BENCHMARK(BM_Forward_Decode)
    ->Args({0, 1, 64})->Args({0, 32, 64})->Args({0, 64, 64})->Args({1, 1, 64})->Args({1, 64, 64})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace prunekv
