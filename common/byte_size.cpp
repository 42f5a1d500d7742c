#include "common/byte_size.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <utility>

#include "common/error.h"

namespace prunekv {

uint64_t parse_byte_size(std::string_view text) {
  const std::string s(text);
  size_t idx = 0;
  double value = 0;
  try {
    value = std::stod(s, &idx);
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("bad size '{}': expected a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", text));
  }
  const std::string unit = s.substr(idx);
  static const std::array<std::pair<const char*, double>, 11> kUnits{{{"", 1.0},
                                                                      {"B", 1.0},
                                                                      {"KiB", 1024.0},
                                                                      {"MiB", 1048576.0},
                                                                      {"GiB", 1073741824.0},
                                                                      {"TiB", 1099511627776.0},
                                                                      {"KB", 1e3},
                                                                      {"MB", 1e6},
                                                                      {"GB", 1e9},
                                                                      {"TB", 1e12},
                                                                      {"K", 1024.0}}};
  for (const auto& [name, scale] : kUnits) {
    if (unit == name) {
      const double bytes = value * scale;
      if (!(bytes >= 0) || !std::isfinite(bytes) || bytes > 1.8e19)
        throw ConfigError(fmt::format("bad size '{}': must be a non-negative finite amount", text));
      return static_cast<uint64_t>(bytes);
    }
  }
  throw ConfigError(fmt::format("bad size '{}': unknown unit '{}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", text, unit));
}

std::string format_bytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1099511627776.0) return fmt::format("{:.2f} TiB", b / 1099511627776.0);
  if (b >= 1073741824.0) return fmt::format("{:.2f} GiB", b / 1073741824.0);
  if (b >= 1048576.0) return fmt::format("{:.2f} MiB", b / 1048576.0);
  if (b >= 1024.0) return fmt::format("{:.2f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

}  // namespace prunekv
