#pragma once
// Case-insensitive matching of names the user types (model shapes, devices, profiles).
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace prunekv {

// ASCII lower case (names here are ASCII; other bytes pass through unchanged).
inline std::string to_lower_ascii(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace prunekv
