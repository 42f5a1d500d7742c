#include "model/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "memory/block_pool.h"
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
  KvLayout layout;
  layout.num_layers = 1;
  layout.num_kv_heads = 2;
  layout.head_dim = 16;
  layout.block_size = 16;
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
