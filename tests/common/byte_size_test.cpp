#include "common/byte_size.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace prunekv {
namespace {

TEST(ByteSize, ParsesBinaryAndDecimalUnits) {
  EXPECT_EQ(parse_byte_size("4096"), 4096u);
  EXPECT_EQ(parse_byte_size("2MiB"), 2u * 1024 * 1024);
  EXPECT_EQ(parse_byte_size("1.5GiB"), 1610612736u);
  EXPECT_EQ(parse_byte_size("80GB"), 80'000'000'000u);
  EXPECT_EQ(parse_byte_size("512KiB"), 512u * 1024);
}

TEST(ByteSize, RejectsGarbageWithClearError) {
  EXPECT_THROW(parse_byte_size("lots"), ConfigError);
  EXPECT_THROW(parse_byte_size("12 parsecs"), ConfigError);
  EXPECT_THROW(parse_byte_size("-5MiB"), ConfigError);
}

TEST(ByteSize, FormatsWithUnits) {
  EXPECT_EQ(format_bytes(100), "100 B");
  EXPECT_EQ(format_bytes(2 * 1024 * 1024), "2.00 MiB");
}

}  // namespace
}  // namespace prunekv
