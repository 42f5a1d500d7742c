#include "common/large_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>

namespace prunekv {
namespace {

uintptr_t address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(LargeBuffer, SmallBuffersAreCacheLineAligned) {
  std::unique_ptr<std::byte[], LargeFree> p(allocate_large(1000));
  EXPECT_EQ(address(p.get()) % 64, 0u);
  std::memset(p.get(), 0x5a, 1000);
  EXPECT_EQ(p[999], std::byte{0x5a});
}

TEST(LargeBuffer, BuffersFromTwoMebibytesStartOnAHugePage) {
  for (const size_t bytes : {size_t{2} << 20, (size_t{5} << 20) + 123}) {
    std::unique_ptr<std::byte[], LargeFree> p(allocate_large(bytes));
    EXPECT_EQ(address(p.get()) % (size_t{2} << 20), 0u) << bytes;
    // Every byte is usable, the unaligned tail past the last huge page included.
    std::memset(p.get(), 0x11, bytes);
    EXPECT_EQ(p[bytes - 1], std::byte{0x11});
  }
}

}  // namespace
}  // namespace prunekv
