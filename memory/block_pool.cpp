#include "memory/block_pool.h"

#include <fmt/format.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "common/byte_size.h"
#include "common/check.h"
#include "common/error.h"
#include "common/large_buffer.h"
#include "memory/block_pool_core.h"

namespace prunekv {

// The lock-free free list measured faster than the mutex one for both single-threaded
// allocate/free and concurrent frees (bench/bench_block_pool.cpp, BM_BlockPool_*).
struct BlockPool::Impl {
  explicit Impl(size_t num_blocks) : core(num_blocks) {}
  detail::BlockPoolCore<detail::AtomicFreeStack> core;
};

BlockPool::BlockPool(const KvLayout& layout, size_t num_blocks, Storage storage)
    : layout_(layout), num_blocks_(num_blocks) {
  layout_.validate();
  if (num_blocks >= kInvalidBlock)
    throw ConfigError(fmt::format("block pool: {} blocks, expected fewer than {}", num_blocks, kInvalidBlock));
  // The arena only with storage; the bookkeeping always. num_blocks < 2^32 and KvLayout::validate
  // caps a block at 2^28 bytes, so these fit in 64 bits.
  const uint64_t bookkeeping = uint64_t{num_blocks} * decltype(Impl::core)::kBytesPerBlock;
  const uint64_t data = storage == Storage::kArena ? uint64_t{num_blocks} * layout_.bytes_per_block() : 0;
  if (const uint64_t ram = physical_memory_bytes(); ram != 0 && data + bookkeeping > ram) {
    throw ConfigError(fmt::format("block pool: {} blocks of {} bytes need {} ({} of KV data, {} of bookkeeping), "
                                  "more than this machine's {} of memory; ask for less KV memory",
                                  num_blocks, layout_.bytes_per_block(), format_bytes(data + bookkeeping),
                                  format_bytes(data), format_bytes(bookkeeping), format_bytes(ram)));
  }
  try {
    impl_ = std::make_unique<Impl>(num_blocks);
    if (storage == Storage::kArena) {
      // Not touched here (see commit_memory): the OS maps pages as blocks are first written.
      arena_ = allocate_large(std::max<size_t>(num_blocks * layout_.bytes_per_block(), 64));
    }
  } catch (const std::bad_alloc&) {
    throw ConfigError(fmt::format("block pool: cannot allocate {} blocks of {} bytes ({}): more than this machine "
                                  "can hold; ask for less KV memory",
                                  num_blocks, layout_.bytes_per_block(), format_bytes(data + bookkeeping)));
  }
}

BlockPool::~BlockPool() {
  const size_t in_use = num_used_blocks();
  free_large(arena_);
  PKV_CHECK(in_use == 0, "block pool destroyed with {} of {} blocks still in use (a leak)", in_use, num_blocks_);
}

bool BlockPool::allocate(size_t n, std::vector<BlockId>& out) { return impl_->core.allocate(n, out); }
void BlockPool::free(BlockId id) { impl_->core.free(id); }
void BlockPool::free(std::span<const BlockId> ids) { impl_->core.free(ids); }
void BlockPool::retain(BlockId id) { impl_->core.retain(id); }
void BlockPool::retain(std::span<const BlockId> ids) {
  for (BlockId id : ids) impl_->core.retain(id);
}
uint32_t BlockPool::ref_count(BlockId id) const { return impl_->core.ref_count(id); }
size_t BlockPool::num_free_blocks() const { return impl_->core.num_free(); }

void BlockPool::commit_memory() {
  if (arena_ == nullptr) return;
  // The kernel zeroes each page as it is first touched: touching them from every thread of the
  // caller's arena shares that out (2 GiB: 0.24 s on one thread, 0.14-0.18 s on two here).
  // The range counts huge pages, so no page is split between two threads.
  const size_t bytes = arena_bytes();
  tbb::parallel_for(tbb::blocked_range<size_t>(0, (bytes + kHugePageBytes - 1) / kHugePageBytes),
                    [&](const tbb::blocked_range<size_t>& r) {
                      const size_t begin = r.begin() * kHugePageBytes;
                      const size_t end = std::min(bytes, r.end() * kHugePageBytes);
                      std::memset(arena_ + begin, 0, end - begin);
                    });
}

std::byte* BlockPool::block_data(BlockId id) const {
  PKV_CHECK(arena_ != nullptr, "block_data({}) on a count-only pool", id);
  PKV_DCHECK(id < num_blocks_, "block {} outside the pool of {} blocks", id, num_blocks_);
  return arena_ + size_t{id} * layout_.bytes_per_block();
}

}  // namespace prunekv
