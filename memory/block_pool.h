#pragma once
// memory/: the KV memory every sequence shares: one arena of blocks and per-sequence block lists
// per (layer, KV head), so pruning at any granularity frees whole blocks. Uses common only.
//
// The one shared pool of KV blocks over a single aligned arena. Allocation is all-or-nothing and
// returns nothing when short (vLLM's contract); counters are exact; blocks are ref-counted so a
// prefix can be shared. The engine thread allocates; frees may come from any thread (TBB
// workers pruning in parallel) and are safe and cheap.
#include <atomic>
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "common/ids.h"
#include "memory/kv_layout.h"

namespace prunekv {

class BlockPool {
 public:
  // kArena holds real K/V data; kCountOnly keeps ids, ref counts and counters but no data, so the
  // simulator can run the real pool at sizes this machine cannot hold.
  enum class Storage : uint8_t { kArena, kCountOnly };

  BlockPool(const KvLayout& layout, size_t num_blocks, Storage storage = Storage::kArena);
  // Throws ConfigError for an invalid layout or num_blocks >= kInvalidBlock. Blocks are handed
  // out lowest id first and reused last-freed first (deterministic ids for tests).
  // Destroying the pool while blocks are in use is a leak: PKV_CHECK failure.
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // Appends n fresh blocks (ref count 1) to `out` and returns true, or returns false and leaves
  // `out` and the pool unchanged when fewer than n blocks are free. Engine thread only.
  [[nodiscard]] bool allocate(size_t n, std::vector<BlockId>& out);
  // Drops one reference; at zero the block returns to the free list. Any thread. Freeing a block
  // that is not allocated (double free, never allocated, out of range) is a PKV_CHECK failure.
  void free(BlockId id);
  void free(std::span<const BlockId> ids);
  // Adds one reference to an allocated block (a shared prefix).
  void retain(BlockId id);
  void retain(std::span<const BlockId> ids);
  uint32_t ref_count(BlockId id) const;

  size_t num_total_blocks() const { return num_blocks_; }
  // Exact whenever no free is in flight on another thread.
  size_t num_free_blocks() const;
  size_t num_used_blocks() const { return num_blocks_ - num_free_blocks(); }
  double usage() const { return num_blocks_ ? double(num_used_blocks()) / double(num_blocks_) : 0.0; }

  const KvLayout& layout() const { return layout_; }
  bool has_storage() const { return arena_ != nullptr; }
  // Start of a block's data: K[block_size][head_dim] then V[block_size][head_dim].
  // Requires has_storage().
  std::byte* block_data(BlockId id) const;
  size_t arena_bytes() const { return has_storage() ? num_blocks_ * layout_.bytes_per_block() : 0; }
  // Maps every page of the arena now by writing zeros, as llama.cpp clears its KV buffer when a
  // context is created: otherwise the first write to each page faults inside a step (on a 2 MiB
  // huge page the kernel zeroes it there). Benchmarks call it before their clocks start. Runs
  // on the threads of the caller's TBB arena. No-op on a count-only pool.
  void commit_memory();

 private:
  struct Impl;
  KvLayout layout_;
  size_t num_blocks_;
  std::byte* arena_ = nullptr;
  std::unique_ptr<Impl> impl_;
};

}  // namespace prunekv
