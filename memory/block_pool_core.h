#pragma once
// The bookkeeping half of BlockPool: one uint32 ref count per block plus a free list, generic
// over the free list so the benchmark can measure the lock-free and the mutex designs through
// the exact code BlockPool runs. No K/V data here.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/check.h"
#include "common/ids.h"
#include "memory/free_block_stack.h"

namespace prunekv::detail {

template <class FreeStack>
class BlockPoolCore {
 public:
  explicit BlockPoolCore(size_t num_blocks)
      : num_blocks_(num_blocks), ref_counts_(new std::atomic<uint32_t>[num_blocks]), free_(num_blocks) {}

  // Host memory this bookkeeping takes per block: a ref count and a free-list link.
  static constexpr size_t kBytesPerBlock = sizeof(std::atomic<uint32_t>) + sizeof(uint32_t);

  size_t num_blocks() const { return num_blocks_; }
  size_t num_free() const { return free_.size(); }

  [[nodiscard]] bool allocate(size_t n, std::vector<BlockId>& out) {
    const size_t start = out.size();
    if (!free_.pop(n, out)) return false;
    for (size_t i = start; i < out.size(); ++i) {
      PKV_DCHECK(ref_counts_[out[i]].load(std::memory_order_relaxed) == 0, "block {} on the free list is in use", out[i]);
      ref_counts_[out[i]].store(1, std::memory_order_relaxed);
    }
    return true;
  }

  void free(BlockId id) {
    FreeChain chain;
    release(chain, id);
    free_.push(chain);
  }

  void free(std::span<const BlockId> ids) {
    FreeChain chain;
    for (BlockId id : ids) release(chain, id);
    free_.push(chain);
  }

  void retain(BlockId id) {
    check_range(id, "retain");
    const uint32_t before = ref_counts_[id].fetch_add(1, std::memory_order_relaxed);
    PKV_CHECK(before != 0, "retain of block {} which is not allocated", id);
  }

  uint32_t ref_count(BlockId id) const {
    check_range(id, "ref_count");
    return ref_counts_[id].load(std::memory_order_acquire);
  }

 private:
  void check_range(BlockId id, const char* what) const {
    PKV_CHECK(id < num_blocks_, "{} of block {} outside the pool of {} blocks", what, id, num_blocks_);
  }

  // Drops one reference; the last one links the block into `chain` for the caller to publish.
  void release(FreeChain& chain, BlockId id) {
    check_range(id, "free");
    // acq_rel as for shared_ptr: the last owner must see every other owner's writes finished.
    const uint32_t before = ref_counts_[id].fetch_sub(1, std::memory_order_acq_rel);
    PKV_CHECK(before != 0, "free of block {} which is not allocated (double free or never allocated)", id);
    if (before == 1) free_.chain_add(chain, id);
  }

  size_t num_blocks_;
  std::unique_ptr<std::atomic<uint32_t>[]> ref_counts_;  // value-initialised (0) in C++20
  FreeStack free_;
};

}  // namespace prunekv::detail
