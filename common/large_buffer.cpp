#include "common/large_buffer.h"

#include <cstdlib>
#include <new>

#include <unistd.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace prunekv {

std::byte* allocate_large(size_t bytes) {
  // posix_memalign rather than aligned operator new: a request no machine can serve fails here
  // (and under ASan with allocator_may_return_null) instead of aborting inside the allocator.
  void* p = nullptr;
  const size_t alignment = bytes >= kHugePageBytes ? kHugePageBytes : 64;
  if (::posix_memalign(&p, alignment, bytes == 0 ? 1 : bytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Advice only: where THP is off ("never") this fails and the buffer keeps 4 KiB pages.
  if (bytes >= kHugePageBytes) (void)::madvise(p, bytes / kHugePageBytes * kHugePageBytes, MADV_HUGEPAGE);
#endif
  return static_cast<std::byte*>(p);
}

void free_large(std::byte* p) noexcept { std::free(p); }

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_size > 0 ? uint64_t(pages) * uint64_t(page_size) : 0;
}

}  // namespace prunekv
