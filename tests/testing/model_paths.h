#pragma once
// Where tests find the real model files (../shared beside the checkout). Tests that need them
// call PKV_REQUIRE_SHARED_FILE, which skips with a clear message when the file is absent:
// never a vacuous pass.
#include <filesystem>
#include <string>

namespace prunekv::testing {

inline std::string shared_path(const std::string& relative) { return std::string(PRUNEKV_SHARED_DIR) + "/" + relative; }
inline std::string model_path(const std::string& file) { return shared_path("models/" + file); }
inline std::string golden_path() { return shared_path("golden/stories260K-greedy.jsonl"); }

}  // namespace prunekv::testing

#define PKV_REQUIRE_SHARED_FILE(path)                                                        \
  do {                                                                                       \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing shared file " << (path); \
  } while (0)
