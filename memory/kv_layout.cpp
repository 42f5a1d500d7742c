#include "memory/kv_layout.h"

#include <fmt/format.h>

#include "common/error.h"

namespace prunekv {

size_t kv_dtype_bytes(KvDtype dtype) { return dtype == KvDtype::kF32 ? 4 : 2; }

std::string to_string(KvDtype dtype) { return dtype == KvDtype::kF32 ? "f32" : "f16"; }

void KvLayout::validate() const {
  auto bad = [](const char* field, uint32_t value, const char* expected) {
    throw ConfigError(fmt::format("KV layout: {} = {}, expected {}", field, value, expected));
  };
  if (num_layers == 0 || num_layers > 4096) bad("num_layers", num_layers, "1..4096");
  if (num_kv_heads == 0 || num_kv_heads > 4096) bad("num_kv_heads", num_kv_heads, "1..4096");
  if (head_dim == 0 || head_dim > 8192) bad("head_dim", head_dim, "1..8192");
  if (block_size == 0 || block_size > 4096) bad("block_size", block_size, "1..4096");
}

}  // namespace prunekv
