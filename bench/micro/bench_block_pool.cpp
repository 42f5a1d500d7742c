// Block pool and per-sequence KV store micro-benchmarks, each against a plain reference in the
// same binary so results read as ratios from one run:
//   pool:  lock-free free list (what BlockPool uses) vs the same list under a mutex vs a naive
//          mutex + std::vector<bool> first-fit scan;
//   store: SequenceKv (paged, zero-copy drop) vs a vector-per-list store that copies.
// items_per_second is blocks/s for the pool benchmarks and for drop/compact, slots/s for append.
//   build/<name>/bench/prunekv_microbench --benchmark_filter='BM_(BlockPool|SequenceKv)_' --benchmark_min_time=0.1
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <numeric>
#include <span>
#include <vector>

#include "common/check.h"
#include "memory/block_pool.h"
#include "memory/block_pool_core.h"
#include "memory/free_block_stack.h"
#include "memory/sequence_kv.h"

namespace prunekv {
namespace {

// The reference pool: one mutex, a used bit per block, first-fit scan from a rotating cursor.
class NaiveScanPool {
 public:
  explicit NaiveScanPool(size_t num_blocks) : used_(num_blocks, false), num_free_(num_blocks) {}

  bool allocate(size_t n, std::vector<BlockId>& out) {
    std::lock_guard lock(mutex_);
    if (num_free_ < n) return false;
    for (size_t found = 0; found < n; cursor_ = (cursor_ + 1) % used_.size()) {
      if (!used_[cursor_]) {
        used_[cursor_] = true;
        out.push_back(BlockId(cursor_));
        ++found;
      }
    }
    num_free_ -= n;
    return true;
  }
  void free(BlockId id) {
    std::lock_guard lock(mutex_);
    used_[id] = false;
    ++num_free_;
  }
  void free(std::span<const BlockId> ids) {
    std::lock_guard lock(mutex_);
    for (BlockId id : ids) used_[id] = false;
    num_free_ += ids.size();
  }

 private:
  std::mutex mutex_;
  std::vector<bool> used_;
  size_t num_free_;
  size_t cursor_ = 0;
};

using LockFreeCore = detail::BlockPoolCore<detail::AtomicFreeStack>;
using MutexCore = detail::BlockPoolCore<detail::MutexFreeStack>;

constexpr size_t kPoolBlocks = 1 << 16;

// Half the pool stays held, scattered, so the scan pool pays for a realistic occupancy.
template <class Pool>
std::vector<BlockId> hold_every_other_block(Pool& pool) {
  std::vector<BlockId> all, held, released;
  PKV_CHECK(pool.allocate(kPoolBlocks, all), "benchmark pool too small");
  for (size_t i = 0; i < all.size(); ++i) (i % 2 == 0 ? held : released).push_back(all[i]);
  pool.free(released);
  return held;
}

// Single-threaded: allocate n blocks, free them one by one (the pruning path frees per block).
template <class Pool>
void BM_BlockPool_AllocateFree(benchmark::State& state) {
  Pool pool(kPoolBlocks);
  const std::vector<BlockId> held = hold_every_other_block(pool);
  const size_t n = size_t(state.range(0));
  std::vector<BlockId> ids;
  ids.reserve(n);
  for (auto _ : state) {
    ids.clear();
    PKV_CHECK(pool.allocate(n, ids), "benchmark pool too small");
    for (BlockId id : ids) pool.free(id);
    benchmark::DoNotOptimize(ids.data());
  }
  pool.free(held);
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
}
BENCHMARK(BM_BlockPool_AllocateFree<LockFreeCore>)->Name("BM_BlockPool_AllocateFree/lockfree")->Arg(1)->Arg(16)->Arg(256);
BENCHMARK(BM_BlockPool_AllocateFree<MutexCore>)->Name("BM_BlockPool_AllocateFree/mutex")->Arg(1)->Arg(16)->Arg(256);
BENCHMARK(BM_BlockPool_AllocateFree<NaiveScanPool>)->Name("BM_BlockPool_AllocateFree/naive_scan")->Arg(1)->Arg(16)->Arg(256);

// The public BlockPool (pimpl over LockFreeCore) to show the indirection costs nothing.
void BM_BlockPool_AllocateFree_Public(benchmark::State& state) {
  BlockPool pool(KvLayout{.num_layers = 1, .num_kv_heads = 1, .head_dim = 64}, kPoolBlocks,
                 BlockPool::Storage::kCountOnly);
  const size_t n = size_t(state.range(0));
  std::vector<BlockId> ids;
  ids.reserve(n);
  for (auto _ : state) {
    ids.clear();
    PKV_CHECK(pool.allocate(n, ids), "benchmark pool too small");
    for (BlockId id : ids) pool.free(id);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
}
BENCHMARK(BM_BlockPool_AllocateFree_Public)->Name("BM_BlockPool_AllocateFree/public")->Arg(16);

// Several threads at once, each allocating 16 blocks and freeing them one at a time (per-block
// frees are the contended path; the engine's allocations race them).
template <class Pool>
void BM_BlockPool_ConcurrentFree(benchmark::State& state) {
  static Pool* pool = nullptr;
  if (state.thread_index() == 0) pool = new Pool(kPoolBlocks);
  constexpr size_t kBatch = 16;
  std::vector<BlockId> ids;
  ids.reserve(kBatch);
  for (auto _ : state) {
    ids.clear();
    if (pool->allocate(kBatch, ids))
      for (BlockId id : ids) pool->free(id);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(kBatch));
  if (state.thread_index() == 0) {
    delete pool;
    pool = nullptr;
  }
}
BENCHMARK(BM_BlockPool_ConcurrentFree<LockFreeCore>)->Name("BM_BlockPool_ConcurrentFree/lockfree")->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(BM_BlockPool_ConcurrentFree<MutexCore>)->Name("BM_BlockPool_ConcurrentFree/mutex")->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(BM_BlockPool_ConcurrentFree<NaiveScanPool>)->Name("BM_BlockPool_ConcurrentFree/naive_scan")->ThreadRange(1, 4)->UseRealTime();

// ---- per-sequence KV store ----

// stories15M's KV geometry: 6 layers x 6 KV heads, head_dim 48, 16-slot blocks.
KvLayout bench_layout() { return KvLayout{.num_layers = 6, .num_kv_heads = 6, .head_dim = 48, .block_size = 16}; }
constexpr size_t kTokens = 1024;

// The reference store: per list, K, V and positions in growable vectors; evictions copy.
struct NaiveKvStore {
  struct List {
    std::vector<float> keys, values;
    std::vector<Pos> positions;
  };
  explicit NaiveKvStore(const KvLayout& layout) : head_dim(layout.head_dim), lists(layout.num_lists()) {}

  void append(Pos pos, const float* k, const float* v) {
    for (List& l : lists) {
      l.keys.insert(l.keys.end(), k, k + head_dim);
      l.values.insert(l.values.end(), v, v + head_dim);
      l.positions.push_back(pos);
    }
  }
  // Erases [first, last] of every list of one layer (the store keeps positions sorted).
  void drop_range(const KvLayout& layout, uint32_t layer, Pos first, Pos last) {
    for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
      List& l = lists[layout.list_index(layer, h)];
      const size_t b = size_t(std::lower_bound(l.positions.begin(), l.positions.end(), first) - l.positions.begin());
      const size_t e = size_t(std::upper_bound(l.positions.begin(), l.positions.end(), last) - l.positions.begin());
      l.keys.erase(l.keys.begin() + b * head_dim, l.keys.begin() + e * head_dim);
      l.values.erase(l.values.begin() + b * head_dim, l.values.begin() + e * head_dim);
      l.positions.erase(l.positions.begin() + b, l.positions.begin() + e);
    }
  }
  void compact(size_t list_idx, std::span<const uint32_t> keep) {
    List& l = lists[list_idx];
    List kept;
    for (uint32_t s : keep) {
      kept.keys.insert(kept.keys.end(), l.keys.begin() + s * head_dim, l.keys.begin() + (s + 1) * head_dim);
      kept.values.insert(kept.values.end(), l.values.begin() + s * head_dim, l.values.begin() + (s + 1) * head_dim);
      kept.positions.push_back(l.positions[s]);
    }
    l = std::move(kept);
  }

  size_t head_dim;
  std::vector<List> lists;
};

// Decode-style append: one token at a time, K/V written, up to kTokens; then release.
void BM_SequenceKv_Append(benchmark::State& state) {
  const KvLayout layout = bench_layout();
  BlockPool pool(layout, layout.num_lists() * layout.blocks_for_slots(kTokens));
  std::vector<float> kv(layout.head_dim, 0.5f);
  for (auto _ : state) {
    SequenceKv seq(pool);
    for (Pos pos = 0; pos < Pos(kTokens); ++pos) {
      PKV_CHECK(seq.append(std::span<const Pos>(&pos, 1)), "benchmark pool too small");
      for (uint32_t layer = 0; layer < layout.num_layers; ++layer)
        for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
          std::memcpy(seq.key(layer, h, size_t(pos)), kv.data(), kv.size() * sizeof(float));
          std::memcpy(seq.value(layer, h, size_t(pos)), kv.data(), kv.size() * sizeof(float));
        }
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(kTokens * layout.num_lists()));
}
BENCHMARK(BM_SequenceKv_Append)->Name("BM_SequenceKv_Append/paged")->Unit(benchmark::kMillisecond);

void BM_SequenceKv_Append_Naive(benchmark::State& state) {
  const KvLayout layout = bench_layout();
  std::vector<float> kv(layout.head_dim, 0.5f);
  for (auto _ : state) {
    NaiveKvStore store(layout);
    for (Pos pos = 0; pos < Pos(kTokens); ++pos) store.append(pos, kv.data(), kv.data());
    benchmark::DoNotOptimize(store.lists.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(kTokens * layout.num_lists()));
}
BENCHMARK(BM_SequenceKv_Append_Naive)->Name("BM_SequenceKv_Append/naive")->Unit(benchmark::kMillisecond);

// Setup shared by drop/compact: a full sequence whose K/V were written (as the forward pass
// would), so both stores start from warm, written memory.
void fill(SequenceKv& seq, const std::vector<Pos>& positions) {
  PKV_CHECK(seq.append(positions), "benchmark pool too small");
  const KvLayout& layout = seq.layout();
  for (uint32_t layer = 0; layer < layout.num_layers; ++layer)
    for (uint32_t h = 0; h < layout.num_kv_heads; ++h)
      for (size_t slot = 0; slot < positions.size(); ++slot) {
        std::fill_n(seq.key(layer, h, slot), layout.head_dim, 0.5f);
        std::fill_n(seq.value(layer, h, slot), layout.head_dim, 0.5f);
      }
}

std::vector<Pos> all_positions() {
  std::vector<Pos> positions(kTokens);
  std::iota(positions.begin(), positions.end(), 0);
  return positions;
}

// DBudgetKV-style contiguous cut: drop the oldest half of every layer. Setup is untimed.
void BM_SequenceKv_DropRange(benchmark::State& state) {
  const KvLayout layout = bench_layout();
  BlockPool pool(layout, layout.num_lists() * layout.blocks_for_slots(kTokens));
  const std::vector<Pos> positions = all_positions();
  size_t freed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    SequenceKv seq(pool);
    fill(seq, positions);
    state.ResumeTiming();
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) freed += seq.drop_range(layer, 0, Pos(kTokens / 2) - 1);
    state.PauseTiming();
    seq.free_all();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(int64_t(freed));
}
BENCHMARK(BM_SequenceKv_DropRange)->Name("BM_SequenceKv_DropRange/paged");

void BM_SequenceKv_DropRange_Naive(benchmark::State& state) {
  const KvLayout layout = bench_layout();
  std::vector<float> kv(layout.head_dim, 0.5f);
  size_t freed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    NaiveKvStore store(layout);
    for (Pos pos = 0; pos < Pos(kTokens); ++pos) store.append(pos, kv.data(), kv.data());
    state.ResumeTiming();
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) store.drop_range(layout, layer, 0, Pos(kTokens / 2) - 1);
    // Same unit as the paged store: the blocks' worth of slots evicted.
    freed += layout.num_lists() * layout.blocks_for_slots(kTokens / 2);
    state.PauseTiming();
    store = NaiveKvStore(layout);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(int64_t(freed));
}
BENCHMARK(BM_SequenceKv_DropRange_Naive)->Name("BM_SequenceKv_DropRange/naive");

// SnapKV/H2O-style keep-set: every other slot of every list (data moves, half the blocks free).
std::vector<uint32_t> every_other_slot() {
  std::vector<uint32_t> keep;
  for (uint32_t s = 0; s < kTokens; s += 2) keep.push_back(s);
  return keep;
}

void BM_SequenceKv_Compact(benchmark::State& state) {
  const KvLayout layout = bench_layout();
  BlockPool pool(layout, layout.num_lists() * layout.blocks_for_slots(kTokens));
  const std::vector<Pos> positions = all_positions();
  const std::vector<uint32_t> keep = every_other_slot();
  size_t freed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    SequenceKv seq(pool);  // no statistics: the naive store carries none either
    fill(seq, positions);
    state.ResumeTiming();
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer)
      for (uint32_t h = 0; h < layout.num_kv_heads; ++h) freed += seq.compact(layer, h, keep);
    state.PauseTiming();
    seq.free_all();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(int64_t(freed));
}
BENCHMARK(BM_SequenceKv_Compact)->Name("BM_SequenceKv_Compact/paged");

void BM_SequenceKv_Compact_Naive(benchmark::State& state) {
  const KvLayout layout = bench_layout();
  std::vector<float> kv(layout.head_dim, 0.5f);
  const std::vector<uint32_t> keep = every_other_slot();
  size_t freed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    NaiveKvStore store(layout);
    for (Pos pos = 0; pos < Pos(kTokens); ++pos) store.append(pos, kv.data(), kv.data());
    state.ResumeTiming();
    for (size_t list = 0; list < layout.num_lists(); ++list) store.compact(list, keep);
    freed += layout.num_lists() * (layout.blocks_for_slots(kTokens) - layout.blocks_for_slots(keep.size()));
    state.PauseTiming();
    store = NaiveKvStore(layout);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(int64_t(freed));
}
BENCHMARK(BM_SequenceKv_Compact_Naive)->Name("BM_SequenceKv_Compact/naive");

}  // namespace
}  // namespace prunekv
