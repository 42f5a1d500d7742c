#include "common/check.h"

#include <cstdio>
#include <cstdlib>

namespace prunekv::detail {
void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "%s:%d: PKV_CHECK(%s) failed: %s\n", file, line, cond, msg.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace prunekv::detail
