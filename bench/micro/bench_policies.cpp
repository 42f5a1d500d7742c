// Pruning policies' select() on one sequence after a 2,000-token prefill, 32 layers x 8 KV heads
// x G = 4 query heads per KV head (Llama-3-8B's attention shape), against a plain reference: the
// paper's formula for dbudget evaluated directly (every cut from scratch, O(N^2 * H) per layer).
// Items are layers, so the reference (one layer per iteration) and the policies read as ratios.
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "common/check.h"
#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "policies/pruning_policy.h"

namespace prunekv {
namespace {

constexpr uint32_t kLayers = 32;
constexpr uint32_t kKvHeads = 8;
constexpr uint32_t kGroup = 4;
constexpr int32_t kPromptLen = 2000;
constexpr uint32_t kHeadDim = 64;

// One prefilled sequence with seeded, softmax-like statistics (recency-biased rows summing to
// one, a few spikes) and random keys. Built once and shared by every benchmark.
struct PrefilledSequence {
  KvLayout layout{kLayers, kKvHeads, kHeadDim, kDefaultBlockSize, KvDtype::kF32};
  BlockPool pool{layout, layout.num_lists() * layout.blocks_for_slots(kPromptLen)};
  SequenceKv kv{pool, kGroup};
  std::vector<std::vector<float>> last_rows;  // [layer][H * N], the reference's input

  PrefilledSequence() {
    std::vector<Pos> positions(kPromptLen);
    for (int32_t i = 0; i < kPromptLen; ++i) positions[size_t(i)] = i;
    PKV_CHECK(kv.append(positions), "bench pool too small");
    std::mt19937 rng(2025);
    std::exponential_distribution<float> noise(1.0f);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    const size_t n = kPromptLen, heads = size_t{kKvHeads} * kGroup;
    last_rows.assign(kLayers, std::vector<float>(heads * n));
    for (uint32_t layer = 0; layer < kLayers; ++layer) {
      std::vector<float>& rows = last_rows[layer];
      for (size_t h = 0; h < heads; ++h) {
        float sum = 0.0f;
        for (size_t j = 0; j < n; ++j) {
          float w = noise(rng) * (j < 4 ? 50.0f : 1.0f + 20.0f * float(j) / float(n));
          sum += rows[h * n + j] = w;
        }
        for (size_t j = 0; j < n; ++j) rows[h * n + j] /= sum;
      }
      for (uint32_t kv_head = 0; kv_head < kKvHeads; ++kv_head) {
        for (size_t slot = 0; slot < n; ++slot) {
          float* stats = kv.slot_stats(layer, kv_head, slot);
          for (uint32_t g = 0; g < kGroup; ++g) {
            const float a = rows[(size_t{kv_head} * kGroup + g) * n + slot];
            stats[uint32_t(SlotStat::kLastRow) * kGroup + g] = a;
            stats[uint32_t(SlotStat::kWindowSum) * kGroup + g] = 8.0f * a;
            stats[uint32_t(SlotStat::kAccumulated) * kGroup + g] = a * float(n - slot);
          }
          float* key = kv.key(layer, kv_head, slot);
          for (uint32_t d = 0; d < kHeadDim; ++d) key[d] = gauss(rng);
        }
      }
    }
  }
};

PrefilledSequence& prefilled() {
  static PrefilledSequence seq;
  return seq;
}

void BM_Policy_Select(benchmark::State& state, const char* spec) {
  PrefilledSequence& seq = prefilled();
  const auto policy = make_pruning_policy(spec);
  const PruneView view{seq.kv, kPromptLen, kKvHeads * kGroup};
  size_t planned = 0;
  for (auto _ : state) {
    PrunePlan plan = policy->select(view);
    planned += plan.cuts.size() + plan.keeps.size() + plan.block_drops.size();
    benchmark::DoNotOptimize(plan);
  }
  state.counters["plan_entries"] = double(planned) / double(state.iterations());
  state.SetItemsProcessed(int64_t(state.iterations()) * kLayers);
}

// The paper's formula evaluated directly for one layer: for every c, recompute
// 1 - mean_h sqrt(R_h(c)) / mean_h sqrt(E_h) from scratch and keep the largest c within T.
size_t brute_force_evict_count(const std::vector<float>& rows, size_t heads, size_t n, double threshold) {
  constexpr size_t sinks = kNumSinkTokens;
  size_t best = 0;
  for (size_t c = 0; c + sinks + 1 <= n; ++c) {
    double f_full = 0.0, f_c = 0.0;
    for (size_t h = 0; h < heads; ++h) {
      double e = 0.0, r = 0.0;
      for (size_t j = sinks; j < n; ++j) {
        const double a = rows[h * n + j];
        e += a * a;
        if (j >= sinks + c) r += a * a;
      }
      f_full += std::sqrt(e);
      f_c += std::sqrt(r);
    }
    if (f_full == 0.0 || 1.0 - f_c / f_full <= threshold) best = c;
  }
  return best;
}

void BM_DBudget_BruteForceReferenceOneLayer(benchmark::State& state) {
  PrefilledSequence& seq = prefilled();
  for (auto _ : state) {
    benchmark::DoNotOptimize(brute_force_evict_count(seq.last_rows[2], size_t{kKvHeads} * kGroup, kPromptLen, 0.01));
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}

BENCHMARK_CAPTURE(BM_Policy_Select, dbudget, "dbudget")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, dbudget_exact, "dbudget:exact")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, streaming, "streaming:0.5")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, h2o, "h2o:0.5")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, snapkv, "snapkv:0.5")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, pyramidkv, "pyramidkv:0.5")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, knorm, "knorm:0.5")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, topp, "topp")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, topp_blk, "topp-blk")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy_Select, dbudget_l1, "dbudget-l1")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DBudget_BruteForceReferenceOneLayer)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace prunekv
