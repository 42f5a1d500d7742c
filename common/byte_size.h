#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace prunekv {

// Parses "512MiB", "2GiB", "80GB", "1.5GiB", "4096" (bytes). Throws ConfigError on anything else.
uint64_t parse_byte_size(std::string_view text);

// "1.50 GiB", "512.00 MiB", "12.00 KiB", "100 B".
std::string format_bytes(uint64_t bytes);

}  // namespace prunekv
