#pragma once
// Geometry of the paged KV memory: one block holds `block_size` token slots of K and V for ONE
// KV head of ONE layer, so a sequence owns one block list per (layer, KV head) and pruning at
// any granularity frees whole blocks.
//
// Block data layout (element type `dtype`):
//   K[block_size][head_dim] followed by V[block_size][head_dim]
#include <cstddef>
#include <cstdint>
#include <string>

namespace prunekv {

enum class KvDtype : uint8_t { kF32, kF16 };

size_t kv_dtype_bytes(KvDtype dtype);
std::string to_string(KvDtype dtype);

inline constexpr uint32_t kDefaultBlockSize = 16;

struct KvLayout {
  uint32_t num_layers = 0;
  uint32_t num_kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t block_size = kDefaultBlockSize;
  KvDtype dtype = KvDtype::kF32;

  // One block list per (layer, KV head).
  size_t num_lists() const { return size_t{num_layers} * num_kv_heads; }
  size_t list_index(uint32_t layer, uint32_t kv_head) const { return size_t{layer} * num_kv_heads + kv_head; }
  // K and V of one token for one KV head.
  size_t bytes_per_slot() const { return 2 * size_t{head_dim} * kv_dtype_bytes(dtype); }
  size_t bytes_per_block() const { return bytes_per_slot() * block_size; }
  // K and V of one token across every layer and KV head (llama.cpp's "KV per token").
  size_t bytes_per_token() const { return bytes_per_slot() * num_lists(); }
  // Blocks one list needs to hold n slots.
  size_t blocks_for_slots(size_t num_slots) const { return (num_slots + block_size - 1) / block_size; }

  // Throws ConfigError when a dimension is zero or absurd.
  void validate() const;
};

}  // namespace prunekv
