#include "common/file_fingerprint.h"

#include <fmt/format.h>

#include <array>
#include <fstream>

#include "common/error.h"

namespace prunekv {

std::string FileFingerprint::hash_text() const { return fmt::format("fnv1a64:{:016x}", fnv1a64); }

FileFingerprint fingerprint_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot read \"{}\" to fingerprint it", path));
  FileFingerprint print;
  std::array<char, 1 << 16> buffer;
  while (in) {
    in.read(buffer.data(), buffer.size());
    const auto n = static_cast<size_t>(in.gcount());
    print.fnv1a64 = fnv1a64(std::string_view(buffer.data(), n), print.fnv1a64);
    print.size_bytes += n;
  }
  if (in.bad()) throw InputError(fmt::format("reading \"{}\" failed", path));
  return print;
}

}  // namespace prunekv
