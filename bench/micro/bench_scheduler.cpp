// One engine step at 256 decoding sequences with a runner that does nothing, against a plain
// reference doing only the irreducible bookkeeping of that step (append one slot per sequence,
// record one token): the ratio is the scheduler's own overhead per step.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "common/log.h"
#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "scheduler/engine.h"

namespace prunekv {
namespace {

constexpr size_t kNumSeqs = 256;
constexpr size_t kPromptTokens = 64;
constexpr int kSteps = 2000;  // fixed, so every sequence stays within its max_tokens

KvLayout bench_layout(uint32_t block_size) {
  KvLayout layout;  // stories15M-like: 6 layers x 6 KV heads x 48
  layout.num_layers = 6;
  layout.num_kv_heads = 6;
  layout.head_dim = 48;
  layout.block_size = block_size;
  return layout;
}

class NoopRunner : public ModelRunner {
 public:
  KvLayout kv_layout(uint32_t block_size) const override { return bench_layout(block_size); }
  uint32_t num_query_heads() const override { return 6; }
  uint32_t context_length() const override { return 1u << 20; }
  uint32_t vocab_size() const override { return 32000; }
  std::span<const TokenId> stop_tokens() const override { return stop_; }
  void execute(const StepBatch& batch, std::span<Sampler* const>, std::vector<TokenId>& next_tokens) override {
    next_tokens.assign(batch.num_sampling(), 3);
  }
  double now() const override { return 0.0; }

 private:
  std::vector<TokenId> stop_{2};
};

size_t pool_blocks() {
  const KvLayout layout = bench_layout(kDefaultBlockSize);
  return kNumSeqs * layout.num_lists() * layout.blocks_for_slots(kPromptTokens + kSteps + 64);
}

void BM_Scheduler_Step(benchmark::State& state) {
  log::set_level("warn");
  NoopRunner runner;
  EngineConfig config;
  config.num_kv_blocks = pool_blocks();
  config.storage = BlockPool::Storage::kCountOnly;
  config.max_num_batched_tokens = kNumSeqs * kPromptTokens;
  Engine engine(runner, config);
  for (size_t i = 0; i < kNumSeqs; ++i) {
    RequestSpec spec;
    spec.prompt_tokens.assign(kPromptTokens, 5);
    spec.max_tokens = kSteps + 16;
    spec.ignore_eos = true;
    engine.submit(std::move(spec));
  }
  engine.step();  // every prefill
  for (auto _ : state) engine.step();
  if (engine.num_running() != kNumSeqs) state.SkipWithError("sequences ended during the benchmark");
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(kNumSeqs));
  state.counters["seqs"] = double(kNumSeqs);
}
BENCHMARK(BM_Scheduler_Step)->Iterations(kSteps)->Unit(benchmark::kMicrosecond);

// Reference: the same 256 sequences, each step appending one slot and one token, nothing else.
void BM_Scheduler_StepReference(benchmark::State& state) {
  const KvLayout layout = bench_layout(kDefaultBlockSize);
  BlockPool pool(layout, pool_blocks(), BlockPool::Storage::kCountOnly);
  std::vector<std::unique_ptr<SequenceKv>> seqs;
  std::vector<std::vector<TokenId>> tokens(kNumSeqs);
  std::vector<Pos> prompt(kPromptTokens);
  for (size_t i = 0; i < kPromptTokens; ++i) prompt[i] = Pos(i);
  for (size_t s = 0; s < kNumSeqs; ++s) {
    seqs.push_back(std::make_unique<SequenceKv>(pool));
    if (!seqs.back()->append(prompt)) state.SkipWithError("pool too small");
    tokens[s].assign(kPromptTokens, 5);
  }
  for (auto _ : state) {
    for (size_t s = 0; s < kNumSeqs; ++s) {
      const Pos pos = Pos(tokens[s].size());
      benchmark::DoNotOptimize(seqs[s]->append(std::span<const Pos>(&pos, 1)));
      tokens[s].push_back(3);
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(kNumSeqs));
  state.counters["seqs"] = double(kNumSeqs);
}
BENCHMARK(BM_Scheduler_StepReference)->Iterations(kSteps)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace prunekv
