#pragma once
// Size and FNV-1a 64 hash of a file's bytes: how a shard's manifest names the input it served,
// so a merge can refuse a shard of another file. FNV-1a (Fowler-Noll-Vo, 64-bit offset basis
// and prime) is not cryptographic: it tells an edited or different input apart, it does not
// defend against a forged one. Free functions, no state.
#include <cstdint>
#include <string>
#include <string_view>

namespace prunekv {

inline constexpr uint64_t kFnv1a64OffsetBasis = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnv1a64Prime = 0x100000001b3ull;

// Continues an FNV-1a 64 hash over `bytes`; start from kFnv1a64OffsetBasis.
constexpr uint64_t fnv1a64(std::string_view bytes, uint64_t hash = kFnv1a64OffsetBasis) {
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= kFnv1a64Prime;
  }
  return hash;
}

struct FileFingerprint {
  uint64_t size_bytes = 0;
  uint64_t fnv1a64 = kFnv1a64OffsetBasis;

  // "fnv1a64:" and 16 lower-case hex digits, as manifests store it.
  std::string hash_text() const;
  bool operator==(const FileFingerprint&) const = default;
};

// Reads the whole file. Throws InputError naming the path when it cannot be read.
FileFingerprint fingerprint_file(const std::string& path);

}  // namespace prunekv
