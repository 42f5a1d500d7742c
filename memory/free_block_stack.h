#pragma once
// The pool's free list: a LIFO of block ids linked through one uint32 per block (no allocation
// after construction, 4 bytes per block, so a 10M-block count-only pool stays small). LIFO
// reuse keeps recently freed, cache-warm blocks in play and makes block ids deterministic.
//
// Two interchangeable implementations with the same surface; bench/bench_block_pool.cpp measures
// them against each other and BlockPool uses the faster (AtomicFreeStack, see the closing note
// of issue 2 for the figures).
//
// Frees come in chains: the caller links the ids it releases with chain_add() (private to the
// caller until pushed) and publishes them with one push(), so a batch free from a TBB worker
// costs one CAS or one lock, not one per block.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/check.h"

namespace prunekv::detail {

inline constexpr uint32_t kNoBlock = UINT32_MAX;

// Ids linked by chain_add(), newest on top; empty when size == 0.
struct FreeChain {
  uint32_t top = kNoBlock;
  uint32_t bottom = kNoBlock;
  size_t size = 0;
};

// Treiber stack over indices. The head packs (ABA tag << 32 | top id) so a 64-bit CAS detects a
// head that was popped and pushed back in between. size_ counts published ids and is reserved
// before popping, so all-or-nothing pops never find the list short even with several poppers.
class AtomicFreeStack {
 public:
  // Starts full: ids 0..capacity-1 with 0 on top.
  explicit AtomicFreeStack(size_t capacity)
      : next_(new std::atomic<uint32_t>[capacity]), size_(capacity) {
    for (size_t i = 0; i < capacity; ++i)
      next_[i].store(i + 1 < capacity ? uint32_t(i + 1) : kNoBlock, std::memory_order_relaxed);
    head_.store(pack(0, capacity ? 0 : kNoBlock), std::memory_order_release);
  }

  void chain_add(FreeChain& chain, uint32_t id) {
    next_[id].store(chain.top, std::memory_order_relaxed);
    chain.top = id;
    if (chain.bottom == kNoBlock) chain.bottom = id;
    ++chain.size;
  }

  void push(const FreeChain& chain) {
    if (chain.size == 0) return;
    uint64_t head = head_.load(std::memory_order_relaxed);
    do {
      next_[chain.bottom].store(top_of(head), std::memory_order_relaxed);
    } while (!head_.compare_exchange_weak(head, pack(tag_of(head) + 1, chain.top), std::memory_order_release,
                                          std::memory_order_relaxed));
    size_.fetch_add(chain.size, std::memory_order_release);
  }

  // Appends n ids to out, or returns false with out unchanged when fewer than n are free.
  bool pop(size_t n, std::vector<uint32_t>& out) {
    if (n == 0) return true;
    size_t available = size_.load(std::memory_order_acquire);
    do {
      if (available < n) return false;
    } while (!size_.compare_exchange_weak(available, available - n, std::memory_order_acquire));
    // n ids are now reserved for us: the list holds at least n beyond every other reservation.
    const size_t start = out.size();
    uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      out.resize(start);
      uint32_t id = top_of(head);
      for (size_t i = 0; i < n && id != kNoBlock; ++i) {
        out.push_back(id);
        id = next_[id].load(std::memory_order_relaxed);
      }
      // A short walk means another popper moved the head under us; the CAS then fails too.
      if (out.size() - start == n &&
          head_.compare_exchange_weak(head, pack(tag_of(head) + 1, id), std::memory_order_acquire))
        return true;
      if (out.size() - start != n) head = head_.load(std::memory_order_acquire);
    }
  }

  size_t size() const { return size_.load(std::memory_order_acquire); }

 private:
  static uint64_t pack(uint64_t tag, uint32_t top) { return (tag << 32) | top; }
  static uint32_t top_of(uint64_t head) { return uint32_t(head); }
  static uint32_t tag_of(uint64_t head) { return uint32_t(head >> 32); }

  std::unique_ptr<std::atomic<uint32_t>[]> next_;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<size_t> size_;
};

// The same list under one mutex: the reference the lock-free design is measured against.
class MutexFreeStack {
 public:
  explicit MutexFreeStack(size_t capacity) : next_(capacity), size_(capacity) {
    for (size_t i = 0; i < capacity; ++i) next_[i] = i + 1 < capacity ? uint32_t(i + 1) : kNoBlock;
    head_ = capacity ? 0 : kNoBlock;
  }

  // Writing next_ outside the lock is safe: the ids in a chain belong to the caller alone.
  void chain_add(FreeChain& chain, uint32_t id) {
    next_[id] = chain.top;
    chain.top = id;
    if (chain.bottom == kNoBlock) chain.bottom = id;
    ++chain.size;
  }

  void push(const FreeChain& chain) {
    if (chain.size == 0) return;
    std::lock_guard lock(mutex_);
    next_[chain.bottom] = head_;
    head_ = chain.top;
    size_.store(size_.load(std::memory_order_relaxed) + chain.size, std::memory_order_relaxed);
  }

  bool pop(size_t n, std::vector<uint32_t>& out) {
    std::lock_guard lock(mutex_);
    size_t available = size_.load(std::memory_order_relaxed);
    if (available < n) return false;
    for (size_t i = 0; i < n; ++i) {
      out.push_back(head_);
      head_ = next_[head_];
    }
    size_.store(available - n, std::memory_order_relaxed);
    return true;
  }

  size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  std::mutex mutex_;
  std::vector<uint32_t> next_;
  uint32_t head_;
  std::atomic<size_t> size_;
};

}  // namespace prunekv::detail
