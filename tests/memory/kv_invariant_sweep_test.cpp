// Randomized invariant sweep over one pool and many sequences: every operation the engine,
// the policies and the scheduler perform, in random order, with the whole-pool accounting
// checked after each one and the K/V contents checked against the positions they were written
// for (so a block reused while still held, or a slot moved wrongly, shows up as wrong data).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "tests/testing/kv_invariants.h"

namespace prunekv {
namespace {

struct Tracked {
  SequenceKv seq;
  Pos next_pos = 0;
  uint32_t family = 0;  // forks share their parent's data, so they share its family
};

float key_value(uint32_t family, uint32_t layer, uint32_t head, Pos pos, size_t d) {
  return float(family % 64) * 1e5f + float(layer * 8 + head) * 1e4f + float(pos) + 0.5f * float(d);
}
float stat_value(uint32_t family, uint32_t layer, uint32_t head, Pos pos, size_t k) {
  return key_value(family, layer, head, pos, 0) + 0.25f * float(k);
}

void write_slots(Tracked& t, size_t first_new_slot_from_end) {
  SequenceKv& seq = t.seq;
  const KvLayout& layout = seq.layout();
  for (uint32_t layer = 0; layer < layout.num_layers; ++layer)
    for (uint32_t head = 0; head < layout.num_kv_heads; ++head) {
      const size_t n = seq.num_slots(layer, head);
      for (size_t slot = n - first_new_slot_from_end; slot < n; ++slot) {
        const Pos pos = seq.positions(layer, head)[slot];
        for (size_t d = 0; d < layout.head_dim; ++d) {
          seq.key(layer, head, slot)[d] = key_value(t.family, layer, head, pos, d);
          seq.value(layer, head, slot)[d] = -key_value(t.family, layer, head, pos, d);
        }
        for (size_t k = 0; k < seq.stats_per_slot(); ++k)
          seq.slot_stats(layer, head, slot)[k] = stat_value(t.family, layer, head, pos, k);
      }
    }
}

::testing::AssertionResult contents_match(const Tracked& t) {
  const SequenceKv& seq = t.seq;
  const KvLayout& layout = seq.layout();
  for (uint32_t layer = 0; layer < layout.num_layers; ++layer)
    for (uint32_t head = 0; head < layout.num_kv_heads; ++head) {
      const auto positions = seq.positions(layer, head);
      for (size_t slot = 0; slot < positions.size(); ++slot) {
        if (slot > 0 && positions[slot] <= positions[slot - 1])
          return ::testing::AssertionFailure() << "positions out of order at slot " << slot;
        for (size_t d = 0; d < layout.head_dim; ++d)
          if (seq.key(layer, head, slot)[d] != key_value(t.family, layer, head, positions[slot], d) ||
              seq.value(layer, head, slot)[d] != -key_value(t.family, layer, head, positions[slot], d))
            return ::testing::AssertionFailure() << "K/V of layer " << layer << " head " << head << " slot " << slot
                                                 << " (pos " << positions[slot] << ") is not what was written";
        for (size_t k = 0; k < seq.stats_per_slot(); ++k)
          if (seq.slot_stats(layer, head, slot)[k] != stat_value(t.family, layer, head, positions[slot], k))
            return ::testing::AssertionFailure() << "stats of slot " << slot << " did not move with it";
      }
    }
  return ::testing::AssertionSuccess();
}

class Sweep {
 public:
  explicit Sweep(uint64_t seed) : rng_(seed) {}

  void run(size_t num_ops) {
    for (size_t op = 0; op < num_ops; ++op) {
      const int kind = pick(0, 99);
      Tracked* touched = step(kind);
      ASSERT_TRUE(accounting_holds()) << "after op " << op << " (kind " << kind << ")";
      if (touched) {
        ASSERT_TRUE(contents_match(*touched)) << "after op " << op << " (kind " << kind << ")";
      }
      if (op % 1000 == 0) {
        for (const Tracked& t : seqs_) ASSERT_TRUE(contents_match(t)) << "after op " << op;
      }
    }
    // Every release path ends with an empty pool.
    for (BlockId id : raw_held_) pool_.free(id);
    raw_held_.clear();
    seqs_.clear();
    EXPECT_EQ(pool_.num_used_blocks(), 0u);
    std::printf("appends ok %zu short %zu, blocks dropped %zu compacted %zu, forks %zu\n", appends_ok_, appends_short_,
                blocks_dropped_, blocks_compacted_, forks_ok_);
    EXPECT_GT(appends_ok_, 1000u);
    EXPECT_GT(appends_short_, 100u);
    EXPECT_GT(blocks_dropped_, 1000u);
    EXPECT_GT(blocks_compacted_, 1000u);
    EXPECT_GT(forks_ok_, 100u);
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  Tracked& random_seq() { return seqs_[size_t(pick(0, int(seqs_.size()) - 1))]; }

  ::testing::AssertionResult accounting_holds() {
    std::vector<const SequenceKv*> all;
    for (const Tracked& t : seqs_) all.push_back(&t.seq);
    return testing::pool_accounting_holds(pool_, all, raw_held_);
  }

  // Performs one random operation; returns the sequence whose contents it may have changed.
  Tracked* step(int kind) {
    if (seqs_.empty() || kind < 5) {
      if (seqs_.size() < kMaxSeqs) seqs_.push_back(Tracked{SequenceKv(pool_, 1), 0, next_family_++});
      return nullptr;
    }
    Tracked& t = random_seq();
    if (kind < 45) {  // append: blocks_needed() is exactly what it allocates
      const size_t n = size_t(pick(1, 12));
      std::vector<Pos> positions(n);
      for (Pos& p : positions) p = t.next_pos++;
      const size_t needed = t.seq.blocks_needed(n);
      const size_t used = pool_.num_used_blocks();
      const size_t slots = t.seq.num_slots_total();
      if (t.seq.append(positions)) {
        EXPECT_EQ(pool_.num_used_blocks(), used + needed);
        write_slots(t, n);
        ++appends_ok_;
      } else {
        EXPECT_LT(pool_.num_free_blocks(), needed);
        EXPECT_EQ(pool_.num_used_blocks(), used);
        EXPECT_EQ(t.seq.num_slots_total(), slots);
        ++appends_short_;
        random_seq().seq.free_all();  // the scheduler's answer: preempt someone
        return nullptr;  // t itself may have been preempted
      }
      return &t;
    }
    const KvLayout& layout = pool_.layout();
    const uint32_t layer = uint32_t(pick(0, int(layout.num_layers) - 1));
    const uint32_t head = uint32_t(pick(0, int(layout.num_kv_heads) - 1));
    if (kind < 57) {  // drop a contiguous range of positions
      // Start at a position the layer still holds, so the range usually covers something.
      const auto held = t.seq.positions(layer, head);
      const Pos first = held.empty() ? 0 : held[size_t(pick(0, int(held.size()) - 1))];
      const Pos last = first + Pos(pick(0, 24));
      const size_t used = pool_.num_used_blocks();
      const size_t freed = t.seq.drop_range(layer, first, last);
      EXPECT_LE(used - pool_.num_used_blocks(), freed);  // shared blocks lose a reference only
      blocks_dropped_ += freed;
      return &t;
    }
    if (kind < 70) {  // compact to a random keep-set (unshare first), or a prefix if short
      const size_t n = t.seq.num_slots(layer, head);
      std::vector<uint32_t> keep;
      const int keep_percent = pick(0, 100);
      for (uint32_t s = 0; s < n; ++s)
        if (pick(0, 99) < keep_percent) keep.push_back(s);
      const bool moves = !keep.empty() && keep.back() + 1 != keep.size();
      if (moves && !t.seq.unshare(layer, head).has_value()) {
        for (uint32_t s = 0; s < keep.size(); ++s) keep[s] = s;  // a prefix writes nothing
      }
      blocks_compacted_ += t.seq.compact(layer, head, keep);
      return &t;
    }
    if (kind < 75) {
      t.seq.free_all();
      return &t;
    }
    if (kind < 83) {
      if (seqs_.size() >= kMaxSeqs) return nullptr;
      std::optional<SequenceKv> child = t.seq.fork();
      if (!child) return nullptr;
      ++forks_ok_;
      seqs_.push_back(Tracked{std::move(*child), t.next_pos, t.family});
      return &seqs_.back();
    }
    if (kind < 86) {  // destroy a sequence: the destructor releases its blocks
      std::swap(t, seqs_.back());
      seqs_.pop_back();
      return nullptr;
    }
    if (kind < 90) {  // unshare one list
      t.seq.unshare(layer, head);
      return &t;
    }
    if (kind < 94) {  // raw allocation outside any sequence
      std::vector<BlockId> ids;
      if (pool_.allocate(size_t(pick(0, 6)), ids)) raw_held_.insert(raw_held_.end(), ids.begin(), ids.end());
      return nullptr;
    }
    if (kind < 97) {  // raw share: retain a held block, or one of a sequence's blocks
      if (!raw_held_.empty() && pick(0, 1) == 0) {
        const BlockId id = raw_held_[size_t(pick(0, int(raw_held_.size()) - 1))];
        pool_.retain(id);
        raw_held_.push_back(id);
      } else if (!t.seq.blocks(layer, head).empty()) {
        const BlockId id = t.seq.blocks(layer, head).front();
        pool_.retain(id);
        raw_held_.push_back(id);
      }
      return nullptr;
    }
    // raw free of a few references
    for (int n = pick(1, 8); n > 0 && !raw_held_.empty(); --n) {
      const size_t i = size_t(pick(0, int(raw_held_.size()) - 1));
      pool_.free(raw_held_[i]);
      raw_held_[i] = raw_held_.back();
      raw_held_.pop_back();
    }
    return nullptr;
  }

  static constexpr size_t kMaxSeqs = 12;
  BlockPool pool_{KvLayout{.num_layers = 2, .num_kv_heads = 2, .head_dim = 2, .block_size = 4}, 160};
  std::mt19937_64 rng_;
  std::vector<Tracked> seqs_;
  std::vector<BlockId> raw_held_;  // one entry per reference held outside sequences
  uint32_t next_family_ = 1;
  size_t appends_ok_ = 0, appends_short_ = 0, blocks_dropped_ = 0, blocks_compacted_ = 0, forks_ok_ = 0;
};

TEST(SequenceKv, RandomizedOperationsKeepPoolAccountingExact) {
  for (uint64_t seed : {1u, 2u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    Sweep sweep(seed);
    sweep.run(60'000);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace prunekv
