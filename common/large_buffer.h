#pragma once
// Allocation of the big long-lived buffers (the KV arena, packed weights) on transparent huge
// pages where Linux offers them per mapping (THP "madvise" mode, Debian's default). A decode
// step touches KV blocks scattered over the whole arena; with 4 KiB pages nearly every block
// is a TLB miss and a page walk, with 2 MiB pages one entry covers 256-512 blocks.
#include <cstddef>
#include <cstdint>

namespace prunekv {

// The huge page allocate_large aligns to and advises (x86-64 Linux transparent huge pages).
constexpr size_t kHugePageBytes = size_t{2} << 20;

// Uninitialised, never touched here (pages are mapped on first write), aligned to 64 bytes and,
// from 2 MiB on, to 2 MiB. Throws std::bad_alloc like operator new.
std::byte* allocate_large(size_t bytes);
// Frees what allocate_large returned (null is a no-op).
void free_large(std::byte* p) noexcept;

// This machine's physical memory in bytes, 0 where the system does not say. Sizes above it are
// refused up front: Linux grants such allocations lazily and kills the process as they fill.
uint64_t physical_memory_bytes();

// Deleter for a std::unique_ptr<T[], LargeFree> over allocate_large.
struct LargeFree {
  template <typename T>
  void operator()(T* p) const noexcept {
    free_large(reinterpret_cast<std::byte*>(p));
  }
};

}  // namespace prunekv
