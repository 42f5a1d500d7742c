#include "common/file_fingerprint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "common/error.h"

namespace prunekv {
namespace {

TEST(Fnv1a64, MatchesThePublishedTestVectors) {
  // From the FNV reference test suite (Landon Curt Noll, fnv_test.c).
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
  // Hashing in pieces continues the same hash.
  EXPECT_EQ(fnv1a64("bar", fnv1a64("foo")), fnv1a64("foobar"));
}

TEST(FileFingerprint, HashesEveryByteAcrossReadChunks) {
  const auto path = std::filesystem::temp_directory_path() / ("prunekv_fp_" + std::to_string(::getpid()));
  std::string bytes;
  for (size_t i = 0; i < 200000; ++i) bytes.push_back(static_cast<char>(i * 7 % 251));  // > 3 read chunks
  std::ofstream(path, std::ios::binary) << bytes;
  const FileFingerprint print = fingerprint_file(path.string());
  EXPECT_EQ(print.size_bytes, bytes.size());
  EXPECT_EQ(print.fnv1a64, fnv1a64(bytes));
  EXPECT_EQ(print.hash_text(), fmt::format("fnv1a64:{:016x}", fnv1a64(bytes)));
  std::filesystem::remove(path);
  EXPECT_THROW(fingerprint_file(path.string()), InputError);
}

}  // namespace
}  // namespace prunekv
