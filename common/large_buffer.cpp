#include "common/large_buffer.h"

#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace prunekv {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

std::align_val_t alignment_for(size_t bytes) { return std::align_val_t{bytes >= kHugePage ? kHugePage : 64}; }

}  // namespace

std::byte* allocate_large(size_t bytes) {
  auto* p = static_cast<std::byte*>(::operator new(bytes, alignment_for(bytes)));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Advice only: where THP is off ("never") this fails and the buffer keeps 4 KiB pages.
  if (bytes >= kHugePage) (void)::madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  return p;
}

void free_large(std::byte* p, size_t bytes) noexcept { ::operator delete(p, alignment_for(bytes)); }

}  // namespace prunekv
