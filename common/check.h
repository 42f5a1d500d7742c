#pragma once
// common/: what every module uses: checks, errors, logging, byte sizes, build info, buffers on
// huge pages, the SVG chart writer. Uses only spdlog and fmt.
//
// PKV_CHECK: invariants and bugs (never user input). Always on; prints file:line and a formatted
// message, then aborts. PKV_DCHECK is the same in debug builds and free in release hot loops.
#include <fmt/format.h>

namespace prunekv::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace prunekv::detail

#define PKV_CHECK(cond, ...)                                                              \
  do {                                                                                    \
    if (!(cond)) [[unlikely]]                                                             \
      ::prunekv::detail::check_failed(__FILE__, __LINE__, #cond, ::fmt::format("" __VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define PKV_DCHECK(cond, ...) \
  do {                        \
  } while (0)
#else
#define PKV_DCHECK(cond, ...) PKV_CHECK(cond, __VA_ARGS__)
#endif
