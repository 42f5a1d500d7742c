#include "memory/sequence_kv.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/check.h"
#include "memory/half.h"

namespace prunekv {

namespace {

// Byte geometry of one block: K[block_size][head_dim] then V[block_size][head_dim].
struct BlockGeometry {
  size_t row_bytes;      // one slot's K (or V)
  size_t values_offset;  // where V starts inside the block

  explicit BlockGeometry(const KvLayout& layout)
      : row_bytes(size_t{layout.head_dim} * kv_dtype_bytes(layout.dtype)),
        values_offset(row_bytes * layout.block_size) {}
};

void copy_slot(const BlockPool& pool, const BlockGeometry& geometry, BlockId src_block, size_t src_offset,
               BlockId dst_block, size_t dst_offset) {
  const std::byte* src = pool.block_data(src_block);
  std::byte* dst = pool.block_data(dst_block);
  std::memcpy(dst + dst_offset * geometry.row_bytes, src + src_offset * geometry.row_bytes, geometry.row_bytes);
  std::memcpy(dst + geometry.values_offset + dst_offset * geometry.row_bytes,
              src + geometry.values_offset + src_offset * geometry.row_bytes, geometry.row_bytes);
}

}  // namespace

SequenceKv::SequenceKv(BlockPool& pool, uint32_t stats_group, StatMask stats)
    : pool_(&pool), stats_group_(stats_group), stats_mask_(stats & kAllSlotStats), lists_(pool.layout().num_lists()) {}

SequenceKv::~SequenceKv() { free_all(); }

SequenceKv::SequenceKv(SequenceKv&& other) noexcept
    : pool_(other.pool_),
      stats_group_(other.stats_group_),
      stats_mask_(other.stats_mask_),
      lists_(std::move(other.lists_)),
      num_blocks_(std::exchange(other.num_blocks_, 0)),
      may_share_(other.may_share_) {
  other.lists_.clear();
}

SequenceKv& SequenceKv::operator=(SequenceKv&& other) noexcept {
  if (this == &other) return *this;
  PKV_CHECK(pool_ == other.pool_, "move-assigning a sequence across pools");
  free_all();
  stats_group_ = other.stats_group_;
  stats_mask_ = other.stats_mask_;
  lists_ = std::move(other.lists_);
  other.lists_.clear();
  num_blocks_ = std::exchange(other.num_blocks_, 0);
  may_share_ = other.may_share_;
  return *this;
}

// A partly filled last block shared with another sequence (a fork whose list was compacted to a
// prefix) must not receive this sequence's appends: it is copied first.
bool SequenceKv::last_block_shared(const List& l) const {
  return may_share_ && l.positions.size() % layout().block_size != 0 && pool_->ref_count(l.blocks.back()) > 1;
}

size_t SequenceKv::blocks_needed(size_t num_new_tokens) const {
  if (num_new_tokens == 0) return 0;
  size_t needed = 0;
  for (const List& l : lists_)
    needed += layout().blocks_for_slots(l.positions.size() + num_new_tokens) - l.blocks.size() + last_block_shared(l);
  return needed;
}

bool SequenceKv::append(std::span<const Pos> positions) {
  if (positions.empty()) return true;
  // Appends run on the engine thread, one sequence after another: one scratch vector per
  // thread keeps a decode step of hundreds of sequences free of heap allocation.
  static thread_local std::vector<BlockId> fresh;
  fresh.clear();
  if (!pool_->allocate(blocks_needed(positions.size()), fresh)) return false;
  size_t next_fresh = 0;
  size_t copied = 0;
  const size_t per_slot = stats_per_slot();
  for (List& l : lists_) {
    if (last_block_shared(l)) {
      const BlockId copy = fresh[next_fresh++];
      if (pool_->has_storage()) std::memcpy(pool_->block_data(copy), pool_->block_data(l.blocks.back()), layout().bytes_per_block());
      pool_->free(l.blocks.back());  // our reference only
      l.blocks.back() = copy;
      ++copied;
    }
    const size_t new_count = l.positions.size() + positions.size();
    const size_t want_blocks = layout().blocks_for_slots(new_count);
    while (l.blocks.size() < want_blocks) l.blocks.push_back(fresh[next_fresh++]);
    // A decode token appends one position to every list: push_back, not a memmove call per list.
    if (positions.size() == 1)
      l.positions.push_back(positions.front());
    else
      l.positions.insert(l.positions.end(), positions.begin(), positions.end());
    if (per_slot != 0) l.stats.resize(new_count * per_slot, 0.0f);
  }
  PKV_CHECK(next_fresh == fresh.size(), "append allocated {} blocks but linked {}", fresh.size(), next_fresh);
  num_blocks_ += fresh.size() - copied;
  return true;
}

float* SequenceKv::key(uint32_t layer, uint32_t kv_head, size_t slot) const {
  PKV_CHECK(pool_->has_storage(), "key() on a count-only pool");
  PKV_DCHECK(layout().dtype == KvDtype::kF32, "key() as f32 on a {} cache", to_string(layout().dtype));
  const List& l = list(layer, kv_head);
  PKV_DCHECK(slot < l.positions.size(), "slot {} of {}", slot, l.positions.size());
  const uint32_t block_size = layout().block_size;
  auto* data = reinterpret_cast<float*>(pool_->block_data(l.blocks[slot / block_size]));
  return data + (slot % block_size) * layout().head_dim;
}

float* SequenceKv::value(uint32_t layer, uint32_t kv_head, size_t slot) const {
  PKV_CHECK(pool_->has_storage(), "value() on a count-only pool");
  PKV_DCHECK(layout().dtype == KvDtype::kF32, "value() as f32 on a {} cache", to_string(layout().dtype));
  const List& l = list(layer, kv_head);
  PKV_DCHECK(slot < l.positions.size(), "slot {} of {}", slot, l.positions.size());
  const uint32_t block_size = layout().block_size;
  auto* data = reinterpret_cast<float*>(pool_->block_data(l.blocks[slot / block_size]));
  return data + (size_t{block_size} + slot % block_size) * layout().head_dim;
}

void SequenceKv::write_kv(uint32_t layer, uint32_t kv_head, size_t slot, const float* k, const float* v) const {
  PKV_CHECK(pool_->has_storage(), "write_kv() on a count-only pool");
  const List& l = list(layer, kv_head);
  PKV_DCHECK(slot < l.positions.size(), "slot {} of {}", slot, l.positions.size());
  const KvLayout& geometry = layout();
  const BlockGeometry block(geometry);
  std::byte* data = pool_->block_data(l.blocks[slot / geometry.block_size]);
  std::byte* k_dst = data + (slot % geometry.block_size) * block.row_bytes;
  std::byte* v_dst = k_dst + block.values_offset;
  if (geometry.dtype == KvDtype::kF16) {
    floats_to_halves(reinterpret_cast<uint16_t*>(k_dst), k, geometry.head_dim);
    floats_to_halves(reinterpret_cast<uint16_t*>(v_dst), v, geometry.head_dim);
  } else {
    std::memcpy(k_dst, k, block.row_bytes);
    std::memcpy(v_dst, v, block.row_bytes);
  }
}

float* SequenceKv::slot_stats(uint32_t layer, uint32_t kv_head, size_t slot) {
  List& l = list(layer, kv_head);
  PKV_DCHECK(has_stats() && slot < l.positions.size(), "slot_stats({}) of {} slots, stats_group {}", slot,
             l.positions.size(), stats_group_);
  return l.stats.data() + slot * stats_per_slot();
}

const float* SequenceKv::slot_stats(uint32_t layer, uint32_t kv_head, size_t slot) const {
  const List& l = list(layer, kv_head);
  PKV_DCHECK(has_stats() && slot < l.positions.size(), "slot_stats({}) of {} slots, stats_group {}", slot,
             l.positions.size(), stats_group_);
  return l.stats.data() + slot * stats_per_slot();
}

size_t SequenceKv::drop_range(uint32_t layer, Pos first_pos, Pos last_pos) {
  PKV_CHECK(layer < layout().num_layers, "drop_range on layer {} of {}", layer, layout().num_layers);
  const size_t block_size = layout().block_size;
  std::vector<uint32_t> inside_blocks;
  size_t freed = 0;
  for (uint32_t head = 0; head < layout().num_kv_heads; ++head) {
    const std::span<const Pos> positions = list(layer, head).positions;
    inside_blocks.clear();
    for (size_t begin = 0; begin < positions.size(); begin += block_size) {
      const auto block = positions.subspan(begin, std::min(block_size, positions.size() - begin));
      if (std::all_of(block.begin(), block.end(), [&](Pos p) { return p >= first_pos && p <= last_pos; }))
        inside_blocks.push_back(static_cast<uint32_t>(begin / block_size));
    }
    freed += drop_blocks(layer, head, inside_blocks);
  }
  return freed;
}

size_t SequenceKv::drop_blocks(uint32_t layer, uint32_t kv_head, std::span<const uint32_t> block_indices) {
  PKV_CHECK(layer < layout().num_layers && kv_head < layout().num_kv_heads, "drop_blocks on list ({}, {}) of {} x {}",
            layer, kv_head, layout().num_layers, layout().num_kv_heads);
  if (block_indices.empty()) return 0;
  List& l = list(layer, kv_head);
  for (size_t i = 0; i < block_indices.size(); ++i) {
    PKV_CHECK(block_indices[i] < l.blocks.size(), "drop_blocks: block {} of a list with {} blocks", block_indices[i],
              l.blocks.size());
    PKV_CHECK(i == 0 || block_indices[i - 1] < block_indices[i],
              "drop_blocks: block indices not strictly increasing ({} then {})", block_indices[i - 1], block_indices[i]);
  }
  const size_t block_size = layout().block_size;
  const size_t per_slot = stats_per_slot();
  const size_t num_slots = l.positions.size();
  // Kept blocks slide down in the list (their data stays where it is), dropped ones go to the
  // pool; positions and statistics follow their blocks. Every block but the last is full, so the
  // kept ones keep the "full except last" shape wherever the holes are.
  size_t kept_blocks = 0;
  size_t kept_slots = 0;
  size_t next_drop = 0;
  for (size_t b = 0; b < l.blocks.size(); ++b) {
    if (next_drop < block_indices.size() && block_indices[next_drop] == b) {
      pool_->free(l.blocks[b]);
      ++next_drop;
      continue;
    }
    const size_t begin = b * block_size;
    const size_t end = std::min(begin + block_size, num_slots);
    if (kept_slots != begin) {
      std::copy(l.positions.begin() + begin, l.positions.begin() + end, l.positions.begin() + kept_slots);
      std::copy(l.stats.begin() + begin * per_slot, l.stats.begin() + end * per_slot,
                l.stats.begin() + kept_slots * per_slot);
    }
    l.blocks[kept_blocks++] = l.blocks[b];
    kept_slots += end - begin;
  }
  l.blocks.resize(kept_blocks);
  l.positions.resize(kept_slots);
  l.stats.resize(kept_slots * per_slot);
  num_blocks_ -= block_indices.size();
  return block_indices.size();
}

size_t SequenceKv::compact(uint32_t layer, uint32_t kv_head, std::span<const uint32_t> keep_slots) {
  PKV_CHECK(layer < layout().num_layers && kv_head < layout().num_kv_heads, "compact on list ({}, {}) of {} x {}", layer,
            kv_head, layout().num_layers, layout().num_kv_heads);
  List& l = list(layer, kv_head);
  const size_t num_slots = l.positions.size();
  const size_t block_size = layout().block_size;
  const size_t per_slot = stats_per_slot();
  const BlockGeometry geometry(layout());
  const bool has_storage = pool_->has_storage();
  size_t checked_block = SIZE_MAX;  // last destination block verified unshared
  for (size_t dst = 0; dst < keep_slots.size(); ++dst) {
    const size_t src = keep_slots[dst];
    PKV_CHECK(src < num_slots, "compact: keep slot {} of a list with {} slots", src, num_slots);
    PKV_CHECK(dst == 0 || keep_slots[dst - 1] < src, "compact: keep slots not strictly increasing ({} then {})",
              keep_slots[dst - 1], src);
    if (src == dst) continue;  // strictly increasing keeps src >= dst: moves only go down
    const size_t dst_block = dst / block_size;
    if (dst_block != checked_block) {
      PKV_CHECK(pool_->ref_count(l.blocks[dst_block]) == 1,
                "compact would write block {} shared by {} owners (unshare it first)", l.blocks[dst_block],
                pool_->ref_count(l.blocks[dst_block]));
      checked_block = dst_block;
    }
    // Memory-bound: the two row copies dominate (perf), so the index math stays plain.
    if (has_storage)
      copy_slot(*pool_, geometry, l.blocks[src / block_size], src % block_size, l.blocks[dst_block], dst % block_size);
    l.positions[dst] = l.positions[src];
    if (per_slot != 0)
      std::copy(l.stats.begin() + src * per_slot, l.stats.begin() + (src + 1) * per_slot,
                l.stats.begin() + dst * per_slot);
  }
  const size_t kept_blocks = layout().blocks_for_slots(keep_slots.size());
  const size_t freed = l.blocks.size() - kept_blocks;
  pool_->free(std::span<const BlockId>(l.blocks).subspan(kept_blocks));
  l.blocks.resize(kept_blocks);
  l.positions.resize(keep_slots.size());
  l.stats.resize(keep_slots.size() * per_slot);
  num_blocks_ -= freed;
  return freed;
}

void SequenceKv::drop_stats() {
  stats_group_ = 0;
  for (List& l : lists_) std::vector<float>().swap(l.stats);  // clear() would keep the capacity
}

size_t SequenceKv::free_all() {
  // No allocation here: it runs from the destructor and the noexcept move assignment.
  for (List& l : lists_) {
    pool_->free(l.blocks);
    l.blocks.clear();
    l.positions.clear();
    l.stats.clear();
  }
  return std::exchange(num_blocks_, 0);
}

std::optional<size_t> SequenceKv::unshare(uint32_t layer, uint32_t kv_head) {
  PKV_CHECK(layer < layout().num_layers && kv_head < layout().num_kv_heads, "unshare on list ({}, {}) of {} x {}", layer,
            kv_head, layout().num_layers, layout().num_kv_heads);
  List& l = list(layer, kv_head);
  size_t shared = 0;
  for (BlockId id : l.blocks) shared += pool_->ref_count(id) > 1;
  if (shared == 0) return 0;
  std::vector<BlockId> fresh;
  if (!pool_->allocate(shared, fresh)) return std::nullopt;
  size_t next_fresh = 0;
  for (BlockId& id : l.blocks) {
    if (pool_->ref_count(id) == 1) continue;
    const BlockId copy = fresh[next_fresh++];
    if (pool_->has_storage()) std::memcpy(pool_->block_data(copy), pool_->block_data(id), layout().bytes_per_block());
    pool_->free(id);  // drops our reference only: the other owners still hold it
    id = copy;
  }
  return shared;
}

std::optional<SequenceKv> SequenceKv::fork() const {
  const size_t block_size = layout().block_size;
  size_t partial = 0;
  for (const List& l : lists_) partial += l.positions.size() % block_size != 0;
  std::vector<BlockId> fresh;
  if (!pool_->allocate(partial, fresh)) return std::nullopt;
  SequenceKv child(*pool_, stats_group_, stats_mask_);
  size_t next_fresh = 0;
  for (size_t i = 0; i < lists_.size(); ++i) {
    const List& src = lists_[i];
    List& dst = child.lists_[i];
    dst = src;
    const bool has_partial = src.positions.size() % block_size != 0;
    const size_t shared = dst.blocks.size() - (has_partial ? 1 : 0);
    pool_->retain(std::span<const BlockId>(dst.blocks).first(shared));
    if (has_partial) {
      const BlockId copy = fresh[next_fresh++];
      if (pool_->has_storage())
        std::memcpy(pool_->block_data(copy), pool_->block_data(dst.blocks.back()), layout().bytes_per_block());
      dst.blocks.back() = copy;
    }
  }
  child.num_blocks_ = num_blocks_;
  child.may_share_ = true;
  may_share_ = true;
  return child;
}

size_t SequenceKv::num_slots_total() const {
  size_t total = 0;
  for (const List& l : lists_) total += l.positions.size();
  return total;
}

}  // namespace prunekv
