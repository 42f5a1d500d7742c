#include "model/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <tuple>

#include "memory/block_pool.h"
#include "memory/half.h"
#include "memory/sequence_kv.h"
#include "tests/testing/paged_runner.h"
#include "tests/testing/random_model.h"
#include "tests/testing/reference_forward.h"

namespace prunekv {
namespace {

using testing::PagedRunner;
using testing::ReferenceForward;

std::vector<TokenId> random_tokens(size_t n, uint32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TokenId> tokens(n);
  for (auto& t : tokens) t = static_cast<TokenId>(rng() % vocab);
  return tokens;
}

// One layer of 2 KV heads: the kernel tests' KV geometry.
KvLayout one_layer(uint32_t head_dim, uint32_t block_size) {
  KvLayout layout;
  layout.num_layers = 1;
  layout.num_kv_heads = 2;
  layout.head_dim = head_dim;
  layout.block_size = block_size;
  return layout;
}

testing::RandomModelShape gqa_shape() {
  testing::RandomModelShape shape;
  shape.dim = 48;  // 6 query heads of 8 over 2 KV heads: G = 3
  shape.num_heads = 6;
  shape.num_kv_heads = 2;
  shape.num_layers = 3;
  return shape;
}

// The kernel alone: random K/V in several sequences with chunks and decode tokens; the serial
// and TBB drivers must agree bit for bit, statistics included.
TEST(PagedAttention, SerialAndParallelDriversAreBitIdentical) {
  const KvLayout layout = one_layer(/*head_dim=*/16, /*block_size=*/16);
  const uint32_t heads = 8, group = 4;
  BlockPool pool(layout, 512);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);

  const std::vector<size_t> lengths = {1, 40, 77, 16, 130, 5};
  const std::vector<size_t> new_tokens = {1, 40, 9, 1, 33, 5};
  std::vector<std::unique_ptr<SequenceKv>> seqs;
  StepBatch batch;
  for (size_t s = 0; s < lengths.size(); ++s) {
    seqs.push_back(std::make_unique<SequenceKv>(pool, group));
    std::vector<Pos> positions(lengths[s]);
    for (size_t p = 0; p < positions.size(); ++p) positions[p] = Pos(p);
    ASSERT_TRUE(seqs[s]->append(positions));
    for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
      for (size_t slot = 0; slot < lengths[s]; ++slot) {
        for (size_t i = 0; i < layout.head_dim; ++i) {
          seqs[s]->key(0, h, slot)[i] = dist(rng);
          seqs[s]->value(0, h, slot)[i] = dist(rng);
        }
      }
    }
    const std::vector<TokenId> tokens(new_tokens[s], 0);
    const Pos first = Pos(lengths[s] - new_tokens[s]);
    batch.add(seqs[s].get(), tokens, first, true, StatsRequest{Pos(lengths[s]) - 2, 4});
  }
  std::vector<float> q(batch.num_tokens() * heads * layout.head_dim);
  for (auto& x : q) x = dist(rng);

  enum Mode { kSerial, kParallel, kReference };
  auto run = [&](Mode mode) {
    for (auto& seq : seqs) {  // fresh statistics for each run
      for (size_t slot = 0; slot < seq->num_slots(0, 0); ++slot) {
        for (uint32_t h = 0; h < layout.num_kv_heads; ++h) std::fill_n(seq->slot_stats(0, h, slot), seq->stats_per_slot(), 0.0f);
      }
    }
    std::vector<float> out(q.size(), NAN);
    PagedAttention attention(heads, layout.num_kv_heads, layout.head_dim, 2);
    attention.reserve(batch);
    const AttentionArgs args{&batch, 0, q.data(), out.data()};
    tbb::task_arena arena(2);
    if (mode == kParallel) {
      attention.run_parallel(args, arena);
    } else if (mode == kSerial) {
      attention.run_serial(args);
    } else {
      attention.run_reference(args);
    }
    for (auto& seq : seqs) {
      for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
        for (size_t slot = 0; slot < seq->num_slots(0, h); ++slot) {
          const float* st = seq->slot_stats(0, h, slot);
          out.insert(out.end(), st, st + seq->stats_per_slot());
        }
      }
    }
    return out;
  };
  const auto serial = run(kSerial);
  const auto parallel = run(kParallel);
  ASSERT_EQ(serial.size(), parallel.size());
  EXPECT_EQ(0, std::memcmp(serial.data(), parallel.data(), serial.size() * sizeof(float)));
  for (float x : serial) ASSERT_FALSE(std::isnan(x));  // every output row was written
  float total_stats = 0.0f;
  for (size_t i = q.size(); i < serial.size(); ++i) total_stats += serial[i];
  EXPECT_GT(total_stats, 0.0f);  // and statistics were recorded
  // The SIMD kernel (head_dim 16) against the plain scalar one: outputs and statistics.
  const auto reference = run(kReference);
  ASSERT_EQ(serial.size(), reference.size());
  for (size_t i = 0; i < serial.size(); ++i) {
    ASSERT_NEAR(serial[i], reference[i], 2e-5f * (1.0f + std::fabs(reference[i]))) << "element " << i;
  }
}

// ---- The tiled SIMD kernel against the plain reference, shape by shape. ----

enum class Kernel { kSerial, kParallel, kReference };

void fill_random_kv(SequenceKv& kv, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  const KvLayout& layout = kv.layout();
  for (uint32_t l = 0; l < layout.num_layers; ++l) {
    for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
      for (size_t slot = 0; slot < kv.num_slots(l, h); ++slot) {
        std::vector<float> k(layout.head_dim), v(layout.head_dim);
        for (size_t i = 0; i < layout.head_dim; ++i) {
          k[i] = dist(rng);
          v[i] = dist(rng);
        }
        kv.write_kv(l, h, slot, k.data(), v.data());
      }
    }
  }
}

void zero_stats(SequenceKv& kv) {
  if (!kv.has_stats()) return;
  for (uint32_t h = 0; h < kv.layout().num_kv_heads; ++h) {
    for (size_t slot = 0; slot < kv.num_slots(0, h); ++slot)
      std::fill_n(kv.slot_stats(0, h, slot), kv.stats_per_slot(), 0.0f);
  }
}

// One layer-0 attention over `batch` with fresh statistics; returns the outputs followed by
// every slot's statistics (sequence by sequence, list by list).
std::vector<float> run_attention(Kernel kernel, const StepBatch& batch, const std::vector<float>& q,
                                 uint32_t heads) {
  const KvLayout& layout = batch.seqs.at(0).kv->layout();
  for (const StepSequence& seq : batch.seqs) zero_stats(*seq.kv);
  std::vector<float> out(q.size(), NAN);
  PagedAttention attention(heads, layout.num_kv_heads, layout.head_dim, 2);
  attention.reserve(batch);
  const AttentionArgs args{&batch, 0, q.data(), out.data()};
  tbb::task_arena arena(2);
  switch (kernel) {
    case Kernel::kSerial:
      attention.run_serial(args);
      break;
    case Kernel::kParallel:
      attention.run_parallel(args, arena);
      break;
    case Kernel::kReference:
      attention.run_reference(args);
      break;
  }
  for (const StepSequence& seq : batch.seqs) {
    if (!seq.kv->has_stats()) continue;
    for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
      for (size_t slot = 0; slot < seq.kv->num_slots(0, h); ++slot) {
        const float* st = seq.kv->slot_stats(0, h, slot);
        out.insert(out.end(), st, st + seq.kv->stats_per_slot());
      }
    }
  }
  return out;
}

std::vector<float> random_queries(const StepBatch& batch, uint32_t heads, uint32_t head_dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> q(batch.num_tokens() * heads * head_dim);
  for (auto& x : q) x = dist(rng);
  return q;
}

struct KernelShape {
  uint32_t head_dim;
  uint32_t group;
  uint32_t block_size;
};

// Decode, a whole prompt, a later prefill chunk, and a chunk and a decode token over pruned
// lists (each KV head keeping a different subset, so lists hold fewer slots than positions and
// differ in length), all with every statistic: the tiled kernel matches the reference within
// float tolerance and its two drivers agree bit for bit.
TEST(PagedAttention, TiledKernelMatchesTheReferenceAcrossShapes) {
  const std::vector<KernelShape> shapes = {{8, 1, 16},  {8, 2, 16},   {8, 4, 16},   {8, 2, 5},   {8, 2, 1},
                                           {16, 1, 16}, {16, 2, 16},  {16, 4, 7},   {64, 1, 16}, {64, 2, 16},
                                           {64, 4, 16}, {128, 1, 16}, {128, 2, 16}, {128, 4, 3}};
  for (const KernelShape& shape : shapes) {
    SCOPED_TRACE(::testing::Message() << "head_dim " << shape.head_dim << " G " << shape.group
                                      << " block size " << shape.block_size);
    const KvLayout layout = one_layer(/*head_dim=*/shape.head_dim, /*block_size=*/shape.block_size);
    const uint32_t heads = layout.num_kv_heads * shape.group;
    BlockPool pool(layout, 2 * 400 / shape.block_size + 64);
    std::mt19937_64 rng(shape.head_dim * 100 + shape.group * 10 + shape.block_size);
    std::vector<std::unique_ptr<SequenceKv>> seqs;
    StepBatch batch;
    auto positions = [](Pos first, size_t n) {
      std::vector<Pos> p(n);
      for (size_t i = 0; i < n; ++i) p[i] = first + Pos(i);
      return p;
    };
    // (slots before the step, tokens in the step, pruned history)
    const std::vector<std::tuple<size_t, size_t, bool>> cases = {
        {49, 1, false}, {0, 37, false}, {47, 13, false}, {70, 9, true},
        {70, 1, true},  {0, 1, false},  {0, 40, false}};
    for (const auto& [before, step, pruned] : cases) {
      seqs.push_back(std::make_unique<SequenceKv>(pool, shape.group));
      SequenceKv& kv = *seqs.back();
      if (before > 0) {
        ASSERT_TRUE(kv.append(positions(0, before)));
      }
      if (pruned) {
        for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
          std::vector<uint32_t> keep;
          for (uint32_t s = 0; s < before; ++s) {
            if (h == 0 ? (s < 4 || s % 3 == 0) : (s < 4 || s >= 50)) keep.push_back(s);
          }
          kv.compact(0, h, keep);
        }
        ASSERT_NE(kv.num_slots(0, 0), kv.num_slots(0, 1));
      }
      ASSERT_TRUE(kv.append(positions(Pos(before), step)));
      fill_random_kv(kv, rng);
      const std::vector<TokenId> tokens(step, 0);
      // Prompts ending inside the step, so that every statistic is recorded by some rows.
      batch.add(&kv, tokens, Pos(before), true, StatsRequest{Pos(before + step) - 1, 5});
    }
    const auto q = random_queries(batch, heads, shape.head_dim, 9);
    const auto serial = run_attention(Kernel::kSerial, batch, q, heads);
    const auto parallel = run_attention(Kernel::kParallel, batch, q, heads);
    const auto reference = run_attention(Kernel::kReference, batch, q, heads);
    ASSERT_EQ(serial.size(), parallel.size());
    ASSERT_EQ(serial.size(), reference.size());
    EXPECT_EQ(0, std::memcmp(serial.data(), parallel.data(), serial.size() * sizeof(float)));
    for (size_t i = 0; i < serial.size(); ++i) {
      ASSERT_FALSE(std::isnan(serial[i])) << "element " << i;
      ASSERT_NEAR(serial[i], reference[i], 2e-5f * (1.0f + std::fabs(reference[i])))
          << (i < q.size() ? "output " : "statistic ") << i;
    }
  }
}

// An f16 cache holding values that f16 represents exactly must give the same bits as an f32
// cache holding them: the kernels widen f16 blocks and then run the f32 path unchanged (every
// head_dim path of it: the transposed head_dim 8 scores, dot4, 1 to 4 vectors of V per pass).
TEST(PagedAttention, HalfPrecisionCacheReadsAsTheSameValues) {
  for (const uint32_t head_dim : {8u, 16u, 24u, 48u, 64u}) {
    SCOPED_TRACE(::testing::Message() << "head_dim " << head_dim);
    KvLayout layout32 = one_layer(head_dim, 16), layout16 = layout32;
    layout16.dtype = KvDtype::kF16;
    BlockPool pool32(layout32, 64), pool16(layout16, 64);
    EXPECT_EQ(layout16.bytes_per_block() * 2, layout32.bytes_per_block());
    const uint32_t group = 2, heads = 2 * group;
    std::mt19937_64 rng(21);
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    SequenceKv a32(pool32, group), a16(pool16, group), b32(pool32, group), b16(pool16, group);
    StepBatch batch32, batch16;
    // A 37-token prefill after 20 earlier slots, and a decode token after 70.
    for (auto [kv32, kv16, before, step] : {std::tuple{&a32, &a16, 20, 37}, std::tuple{&b32, &b16, 70, 1}}) {
      std::vector<Pos> positions(size_t(before + step));
      for (size_t p = 0; p < positions.size(); ++p) positions[p] = Pos(p);
      ASSERT_TRUE(kv32->append(positions));
      ASSERT_TRUE(kv16->append(positions));
      for (uint32_t h = 0; h < 2; ++h) {
        for (size_t slot = 0; slot < positions.size(); ++slot) {
          std::vector<float> kv(2 * head_dim);
          std::vector<uint16_t> halves(kv.size());
          for (float& x : kv) x = dist(rng);
          floats_to_halves(halves.data(), kv.data(), kv.size());
          halves_to_floats(kv.data(), halves.data(), kv.size());  // now exact in f16
          kv32->write_kv(0, h, slot, kv.data(), kv.data() + head_dim);
          kv16->write_kv(0, h, slot, kv.data(), kv.data() + head_dim);
        }
      }
      const std::vector<TokenId> tokens(size_t(step), 0);
      batch32.add(kv32, tokens, Pos(before), true, StatsRequest{Pos(before + step), 8});
      batch16.add(kv16, tokens, Pos(before), true, StatsRequest{Pos(before + step), 8});
    }
    const auto q = random_queries(batch32, heads, head_dim, 5);
    for (const Kernel kernel : {Kernel::kSerial, Kernel::kParallel, Kernel::kReference}) {
      const auto out32 = run_attention(kernel, batch32, q, heads);
      const auto out16 = run_attention(kernel, batch16, q, heads);
      ASSERT_EQ(out32.size(), out16.size());
      EXPECT_EQ(0, std::memcmp(out32.data(), out16.data(), out32.size() * sizeof(float)));
    }
  }
}

// A token's output (and its statistics) must not depend on how many tokens share its step:
// every token of a whole-prompt prefill and of a chunked prefill equals, bit for bit, the same
// token decoded alone over a list that ends with it.
TEST(PagedAttention, TokenOutputDoesNotDependOnItsStep) {
  for (const uint32_t head_dim : {8u, 16u, 64u}) {
    SCOPED_TRACE(::testing::Message() << "head_dim " << head_dim);
    const KvLayout layout = one_layer(/*head_dim=*/head_dim, /*block_size=*/16);
    const uint32_t group = 2, heads = 4;
    const size_t length = 45;
    BlockPool pool(layout, 2 * 2 * length * (length / 16 + 1));
    std::mt19937_64 rng(head_dim);
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    std::vector<float> keys(length * layout.num_kv_heads * head_dim), values(keys.size());
    for (auto& x : keys) x = dist(rng);
    for (auto& x : values) x = dist(rng);
    const size_t row = size_t{heads} * head_dim;
    std::vector<float> q_by_pos(length * row);
    for (auto& x : q_by_pos) x = dist(rng);
    // seqs[v - 1]: the first v slots of the same K/V.
    std::vector<std::unique_ptr<SequenceKv>> seqs;
    for (size_t v = 1; v <= length; ++v) {
      seqs.push_back(std::make_unique<SequenceKv>(pool, group));
      std::vector<Pos> positions(v);
      for (size_t p = 0; p < v; ++p) positions[p] = Pos(p);
      ASSERT_TRUE(seqs.back()->append(positions));
      for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
        for (size_t slot = 0; slot < v; ++slot) {
          std::copy_n(&keys[(slot * layout.num_kv_heads + h) * head_dim], head_dim,
                      seqs.back()->key(0, h, slot));
          std::copy_n(&values[(slot * layout.num_kv_heads + h) * head_dim], head_dim,
                      seqs.back()->value(0, h, slot));
        }
      }
    }
    const StatsRequest request{Pos(length), 8, stat_bit(SlotStat::kLastRow)};
    // Runs chunks [first, end) of the prompt, each on seqs[end - 1]; returns each position's
    // output row and the last row's statistics.
    auto run_chunks = [&](const std::vector<std::pair<size_t, size_t>>& chunks) {
      StepBatch batch;
      std::vector<float> q;
      for (const auto& [first, end] : chunks) {
        const std::vector<TokenId> tokens(end - first, 0);
        batch.add(seqs[end - 1].get(), tokens, Pos(first), true, request);
        q.insert(q.end(), q_by_pos.begin() + std::ptrdiff_t(first * row),
                 q_by_pos.begin() + std::ptrdiff_t(end * row));
      }
      const auto all = run_attention(Kernel::kSerial, batch, q, heads);
      std::vector<float> by_pos(length * row);
      size_t token = 0;
      for (const auto& [first, end] : chunks) {
        for (size_t p = first; p < end; ++p, ++token) std::copy_n(&all[token * row], row, &by_pos[p * row]);
      }
      std::vector<float> last_row;
      const SequenceKv& full = *seqs.back();
      for (uint32_t h = 0; h < layout.num_kv_heads; ++h) {
        for (size_t slot = 0; slot < length; ++slot) {
          const float* st = full.slot_stats(0, h, slot) + size_t(SlotStat::kLastRow) * group;
          last_row.insert(last_row.end(), st, st + group);
        }
      }
      return std::make_pair(by_pos, last_row);
    };
    std::vector<std::pair<size_t, size_t>> decode, whole = {{0, length}}, chunked, uneven;
    for (size_t p = 0; p < length; ++p) decode.emplace_back(p, p + 1);
    for (size_t first = 0; first < length; first += 7)
      chunked.emplace_back(first, std::min(length, first + 7));
    for (size_t first = 0, c = 1; first < length; first += c, c += 3)
      uneven.emplace_back(first, std::min(length, first + c));
    const auto alone = run_chunks(decode);
    float mass = 0.0f;
    for (float x : alone.second) mass += x;
    EXPECT_NEAR(mass, float(heads), 1e-4f);  // the last row was recorded: one softmax row per head
    for (const auto* chunks : {&whole, &chunked, &uneven}) {
      const auto got = run_chunks(*chunks);
      EXPECT_EQ(0, std::memcmp(got.first.data(), alone.first.data(), got.first.size() * sizeof(float)))
          << chunks->size() << " chunks";
      EXPECT_EQ(0, std::memcmp(got.second.data(), alone.second.data(), got.second.size() * sizeof(float)))
          << chunks->size() << " chunks";
    }
  }
}

// A sequence asking for some statistics gets exactly the values a sequence asking for all of
// them gets for those, and zeros for the rest; decode tokens record nothing.
TEST(PagedAttention, RecordsOnlyTheRequestedStatistics) {
  const KvLayout layout = one_layer(/*head_dim=*/8, /*block_size=*/16);
  const uint32_t group = 2, heads = 4;
  BlockPool pool(layout, 64);
  std::mt19937_64 rng(12);
  SequenceKv kv(pool, group);
  std::vector<Pos> positions(60);
  for (size_t p = 0; p < positions.size(); ++p) positions[p] = Pos(p);
  ASSERT_TRUE(kv.append(positions));
  fill_random_kv(kv, rng);
  // The step: prompt positions 20 .. 49 and two decode tokens beyond; last prompt row inside.
  StepBatch probe;
  probe.add(&kv, std::vector<TokenId>(40, 0), 20, true);
  const auto q = random_queries(probe, heads, layout.head_dim, 13);

  auto stats_for = [&](Kernel kernel, StatMask mask) {
    StepBatch batch;
    batch.add(&kv, std::vector<TokenId>(40, 0), 20, true, StatsRequest{50, 6, mask});
    auto all = run_attention(kernel, batch, q, heads);
    return std::vector<float>(all.begin() + std::ptrdiff_t(q.size()), all.end());  // [list][slot][stat][g]
  };
  for (const Kernel kernel : {Kernel::kSerial, Kernel::kReference}) {
    const auto everything = stats_for(kernel, kAllSlotStats);
    for (uint32_t s = 0; s < kNumSlotStats; ++s) {
      const auto stat = static_cast<SlotStat>(s);
      const auto only = stats_for(kernel, stat_bit(stat));
      ASSERT_EQ(only.size(), everything.size());
      double recorded = 0.0;
      for (size_t i = 0; i < only.size(); ++i) {
        const size_t slot_stat = i % (kNumSlotStats * group) / group;
        const size_t slot = i / (kNumSlotStats * group) % positions.size();
        if (slot_stat == s) {
          ASSERT_EQ(only[i], everything[i]) << "stat " << s << " element " << i;
          recorded += only[i];
        } else {
          ASSERT_EQ(only[i], 0.0f) << "stat " << s << " element " << i << " was not requested";
        }
        if (slot >= 50) {
          ASSERT_EQ(everything[i], 0.0f) << "slot " << slot << " is past the prompt";
        }
      }
      // Rows per stat over 2 KV heads x G query heads: the last row 1, the window 6, every
      // prompt query of the step 30.
      const double rows = stat == SlotStat::kLastRow ? 1 : stat == SlotStat::kWindowSum ? 6 : 30;
      EXPECT_NEAR(recorded, rows * heads, 1e-3) << "stat " << s;
    }
    EXPECT_EQ(stats_for(kernel, 0), std::vector<float>(everything.size(), 0.0f));
  }
}

// A sequence carrying only the statistic its policy reads (as the scheduler makes them) records
// exactly what one carrying all three records for it, in a third of the memory; the outputs are
// the same.
TEST(PagedAttention, ASequenceCarryingOneStatisticRecordsItAsOneCarryingAllDoes) {
  const KvLayout layout = one_layer(/*head_dim=*/8, /*block_size=*/16);
  const uint32_t group = 2, heads = 4;
  BlockPool pool(layout, 64);
  std::vector<Pos> positions(60);
  for (size_t p = 0; p < positions.size(); ++p) positions[p] = Pos(p);
  SequenceKv all(pool, group);
  ASSERT_TRUE(all.append(positions));
  std::mt19937_64 rng(12);
  fill_random_kv(all, rng);
  StepBatch probe;
  probe.add(&all, std::vector<TokenId>(40, 0), 20, true);
  const auto q = random_queries(probe, heads, layout.head_dim, 13);
  for (uint32_t s = 0; s < kNumSlotStats; ++s) {
    const auto stat = static_cast<SlotStat>(s);
    SequenceKv lean(pool, group, stat_bit(stat));
    ASSERT_TRUE(lean.append(positions));
    std::mt19937_64 same(12);
    fill_random_kv(lean, same);
    ASSERT_EQ(lean.stats_per_slot(), group);
    ASSERT_EQ(lean.stat_offset(stat), 0u);
    const StatsRequest request{50, 6, stat_bit(stat)};
    for (const Kernel kernel : {Kernel::kSerial, Kernel::kParallel, Kernel::kReference}) {
      StepBatch wide_batch, lean_batch;
      wide_batch.add(&all, std::vector<TokenId>(40, 0), 20, true, request);
      lean_batch.add(&lean, std::vector<TokenId>(40, 0), 20, true, request);
      const auto wide = run_attention(kernel, wide_batch, q, heads);  // outputs, then [list][slot][stat][g]
      const auto narrow = run_attention(kernel, lean_batch, q, heads);  // outputs, then [list][slot][g]
      ASSERT_EQ(0, std::memcmp(wide.data(), narrow.data(), q.size() * sizeof(float)));
      const size_t slots = (wide.size() - q.size()) / (kNumSlotStats * group);
      ASSERT_EQ(narrow.size() - q.size(), slots * group);
      double recorded = 0.0;
      for (size_t i = 0; i < slots; ++i) {
        for (size_t g = 0; g < group; ++g) {
          const float got = narrow[q.size() + i * group + g];
          ASSERT_EQ(got, wide[q.size() + (i * kNumSlotStats + s) * group + g]) << "stat " << s << " slot " << i;
          recorded += got;
        }
      }
      EXPECT_GT(recorded, 0.0) << "stat " << s;
    }
  }
}

TEST(PagedAttentionDeathTest, AStatisticTheSequenceDoesNotCarryIsCaught) {
  const KvLayout layout = one_layer(/*head_dim=*/8, /*block_size=*/16);
  BlockPool pool(layout, 8);
  SequenceKv lean(pool, /*stats_group=*/2, stat_bit(SlotStat::kLastRow));
  ASSERT_TRUE(lean.append(std::vector<Pos>{0, 1, 2}));
  StepBatch batch;
  batch.add(&lean, std::vector<TokenId>(3, 0), 0, true, StatsRequest{3, 8, stat_bit(SlotStat::kAccumulated)});
  PagedAttention attention(4, layout.num_kv_heads, layout.head_dim, 1);
  EXPECT_DEATH(attention.reserve(batch), "requested but the sequence carries only");
}

// Chunked prefill with statistics, then decode: every slot's statistics equal the reference's
// softmax rows (last row, window sum, accumulated), and decode queries add nothing.
TEST(PagedAttention, RecordsTheReferenceSoftmaxRowsAsStatistics) {
  const auto shape = gqa_shape();
  auto model = testing::make_random_model(shape, 21);
  const ModelConfig& c = model->config;
  const size_t group = c.group_size();
  const auto prompt = random_tokens(45, c.vocab_size, 4);
  const StatsRequest request{45, 8};

  PagedRunner runner(*model, 16, 1024, 2, /*with_stats=*/true);
  runner.add_sequence();
  ReferenceForward ref(*model);
  // expected[layer][head][pos][stat]
  std::vector<std::vector<std::vector<std::array<double, kNumSlotStats>>>> expected(
      c.num_layers, std::vector<std::vector<std::array<double, kNumSlotStats>>>(
                        c.num_heads, std::vector<std::array<double, kNumSlotStats>>(prompt.size(), {0, 0, 0})));
  for (size_t p = 0; p < prompt.size(); ++p) {
    ref.step(prompt[p]);
    for (uint32_t l = 0; l < c.num_layers; ++l) {
      for (uint32_t h = 0; h < c.num_heads; ++h) {
        const auto row = ref.attention_row(l, h);
        for (size_t j = 0; j < row.size(); ++j) {
          auto& e = expected[l][h][j];
          e[size_t(SlotStat::kAccumulated)] += row[j];
          if (Pos(p) >= request.prompt_len - request.window) e[size_t(SlotStat::kWindowSum)] += row[j];
          if (Pos(p) == request.prompt_len - 1) e[size_t(SlotStat::kLastRow)] = row[j];
        }
      }
    }
  }
  for (size_t begin = 0; begin < prompt.size(); begin += 13) {
    const size_t end = std::min(prompt.size(), begin + 13);
    runner.step({{0, {prompt.begin() + begin, prompt.begin() + end}, end == prompt.size(), request}});
  }
  runner.step({{0, {1}, true, request}});  // decode: positions >= prompt_len record nothing
  runner.step({{0, {2}, true, request}});

  const SequenceKv& kv = runner.kv(0);
  for (uint32_t l = 0; l < c.num_layers; ++l) {
    for (uint32_t kvh = 0; kvh < c.num_kv_heads; ++kvh) {
      ASSERT_EQ(kv.num_slots(l, kvh), prompt.size() + 2);
      for (size_t slot = 0; slot < kv.num_slots(l, kvh); ++slot) {
        const float* st = kv.slot_stats(l, kvh, slot);
        for (size_t g = 0; g < group; ++g) {
          for (uint32_t stat = 0; stat < kNumSlotStats; ++stat) {
            const double want = slot < prompt.size() ? expected[l][kvh * group + g][slot][stat] : 0.0;
            EXPECT_NEAR(st[stat * group + g], want, 1e-5) << "layer " << l << " kv head " << kvh << " slot " << slot
                                                           << " g " << g << " stat " << stat;
          }
        }
      }
    }
  }
  // Each query's row sums to one, so the accumulated mass is the number of prompt queries.
  double mass = 0.0;
  for (size_t slot = 0; slot < prompt.size(); ++slot) mass += kv.slot_stats(0, 0, slot)[size_t(SlotStat::kAccumulated) * group];
  EXPECT_NEAR(mass, double(prompt.size()), 1e-3);
}

// Decodes `steps` tokens after pruning and compares every logits row with the reference that
// hides exactly the positions the lists no longer hold.
void expect_decode_matches_masked_reference(PagedRunner& runner, ReferenceForward& ref, const Model& model,
                                            size_t steps) {
  const SequenceKv& kv = runner.kv(0);
  const ModelConfig& c = model.config;
  const Pos first_decode = Pos(runner.num_fed(0));
  std::vector<std::set<Pos>> kept(c.num_layers * c.num_kv_heads);
  for (uint32_t l = 0; l < c.num_layers; ++l) {
    for (uint32_t h = 0; h < c.num_kv_heads; ++h) {
      const auto positions = kv.positions(l, h);
      kept[l * c.num_kv_heads + h] = {positions.begin(), positions.end()};
    }
  }
  ref.set_keep([&kept, first_decode, heads = c.num_kv_heads](uint32_t l, uint32_t h, Pos pos) {
    return pos >= first_decode || kept[l * heads + h].count(pos) > 0;
  });
  TokenId next = testing::argmax(ref.logits());
  for (size_t i = 0; i < steps; ++i) {
    const auto& logits = runner.step({{0, {next}, true, {}}});
    const auto& expected = ref.step(next);
    double worst = 0.0, scale = 1.0;
    for (size_t v = 0; v < expected.size(); ++v) {
      worst = std::max(worst, double(std::fabs(logits[v] - expected[v])));
      scale = std::max(scale, double(std::fabs(expected[v])));
    }
    EXPECT_LT(worst / scale, 1e-4) << "decode step " << i;
    next = testing::argmax(expected);
  }
}

TEST(PagedAttention, AfterDropRangeReadsOnlyTheKeptSlots) {
  auto model = testing::make_random_model(gqa_shape(), 31);
  const auto prompt = random_tokens(70, model->config.vocab_size, 5);
  PagedRunner runner(*model, 16, 1024, 2);
  runner.add_sequence();
  runner.step({{0, prompt, true, {}}});
  ReferenceForward ref(*model);
  ref.prefill(prompt);

  // Positions 4..60 of layer 1: blocks 1 and 2 (positions 16..47) lie inside and go; blocks 0
  // and 3 are only partly covered and stay whole.
  EXPECT_EQ(runner.kv(0).drop_range(1, 4, 60), 2u * model->config.num_kv_heads);
  EXPECT_EQ(runner.kv(0).num_slots(1, 0), 70u - 32u);
  EXPECT_EQ(runner.kv(0).num_slots(0, 0), 70u);
  expect_decode_matches_masked_reference(runner, ref, *model, 8);
}

TEST(PagedAttention, AfterCompactReadsOnlyTheKeptSlots) {
  auto model = testing::make_random_model(gqa_shape(), 41);
  const auto prompt = random_tokens(53, model->config.vocab_size, 6);
  PagedRunner runner(*model, 8, 1024, 2);
  runner.add_sequence();
  // Prefill in two chunks so a decode of the pruned cache also follows a chunked prefill.
  runner.step({{0, {prompt.begin(), prompt.begin() + 30}, false, {}}});
  runner.step({{0, {prompt.begin() + 30, prompt.end()}, true, {}}});
  ReferenceForward ref(*model);
  ref.prefill(prompt);

  // A different keep-set per list, as per-head policies produce: every third slot, a random
  // subset, and the sinks plus a recent window. The last prompt slot always stays.
  std::mt19937_64 rng(8);
  for (uint32_t l = 0; l < model->config.num_layers; ++l) {
    for (uint32_t h = 0; h < model->config.num_kv_heads; ++h) {
      std::vector<uint32_t> keep;
      for (uint32_t s = 0; s < prompt.size(); ++s) {
        const bool kept = (l + h) % 3 == 0 ? s % 3 == 0 : (l + h) % 3 == 1 ? rng() % 2 == 0 : (s < 4 || s >= 40);
        if (kept || s + 1 == prompt.size()) keep.push_back(s);
      }
      runner.kv(0).compact(l, h, keep);
      ASSERT_EQ(runner.kv(0).num_slots(l, h), keep.size());
    }
  }
  expect_decode_matches_masked_reference(runner, ref, *model, 8);
}

}  // namespace
}  // namespace prunekv
