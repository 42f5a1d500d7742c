#include "model/transformer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "common/error.h"
#include "tests/testing/paged_runner.h"
#include "tests/testing/random_model.h"
#include "tests/testing/reference_forward.h"

namespace prunekv {
namespace {

using testing::PagedRunner;
using testing::RandomModelShape;
using testing::ReferenceForward;

// Largest |a - b| relative to the reference row's scale (logits near zero make per-element
// relative error meaningless).
double max_relative_error(std::span<const float> actual, std::span<const float> expected) {
  double scale = 1.0, worst = 0.0;
  for (float e : expected) scale = std::max(scale, double(std::fabs(e)));
  for (size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, double(std::fabs(actual[i] - expected[i])));
  return worst / scale;
}

std::vector<TokenId> random_tokens(size_t n, uint32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TokenId> tokens(n);
  for (auto& t : tokens) t = static_cast<TokenId>(rng() % vocab);
  return tokens;
}

// Three sequences with odd prompt lengths, prefilled in chunks of up to `chunk` tokens and
// started at different steps, so every step mixes prefill chunks with decode tokens of the
// others. Every sampling point is checked against the scalar reference fed the same tokens.
void expect_matches_reference(const RandomModelShape& shape, uint32_t block_size, int threads, size_t chunk) {
  auto model = testing::make_random_model(shape, 42 + shape.dim);
  const std::vector<size_t> prompt_lengths = {29, 17, 5};
  const std::vector<size_t> start_step = {0, 1, 3};
  constexpr size_t kDecodeSteps = 6;
  PagedRunner runner(*model, block_size, 4096, threads);
  std::vector<ReferenceForward> refs;
  std::vector<std::vector<TokenId>> prompts;
  std::vector<TokenId> next(prompt_lengths.size(), -1);
  std::vector<size_t> decoded(prompt_lengths.size(), 0);
  for (size_t s = 0; s < prompt_lengths.size(); ++s) {
    runner.add_sequence();
    refs.emplace_back(*model);
    prompts.push_back(random_tokens(prompt_lengths[s], shape.vocab_size, 7 + s));
  }
  for (size_t step = 0;; ++step) {
    std::vector<PagedRunner::Chunk> chunks;
    for (size_t s = 0; s < prompts.size(); ++s) {
      if (step < start_step[s] || decoded[s] == kDecodeSteps) continue;
      const size_t fed = runner.num_fed(s);
      if (fed < prompts[s].size()) {
        const size_t take = std::min(chunk, prompts[s].size() - fed);
        chunks.push_back({s, {prompts[s].begin() + fed, prompts[s].begin() + fed + take}, fed + take == prompts[s].size(), {}});
      } else {
        chunks.push_back({s, {next[s]}, true, {}});
        ++decoded[s];
      }
    }
    if (chunks.empty()) break;
    runner.step(chunks);
    size_t row = 0;
    for (const auto& chunk : chunks) {
      for (TokenId t : chunk.tokens) refs[chunk.seq].step(t);
      if (!chunk.sample) continue;
      const auto paged = runner.logits_row(row++);
      EXPECT_LT(max_relative_error(paged, refs[chunk.seq].logits()), 1e-4)
          << "seq " << chunk.seq << " at position " << runner.num_fed(chunk.seq) - 1;
      next[chunk.seq] = testing::argmax(paged);
    }
  }
}

TEST(Transformer, MatchesReferenceWithMultiHeadAttention) {
  RandomModelShape shape;
  shape.num_heads = shape.num_kv_heads = 4;
  expect_matches_reference(shape, 16, 1, 8);
}

TEST(Transformer, MatchesReferenceWithGroupedQueryAttention) {
  RandomModelShape shape;  // 4 query heads over 2 KV heads
  expect_matches_reference(shape, 16, 2, 8);
  shape.num_heads = 8;  // 8 over 1, head_dim 4
  shape.num_kv_heads = 1;
  expect_matches_reference(shape, 5, 2, 7);
}

TEST(Transformer, MatchesReferenceWithOddShapesAndHalfSplitRope) {
  RandomModelShape shape;
  shape.dim = 30;  // 3 heads of 10
  shape.num_heads = 3;
  shape.num_kv_heads = 1;
  shape.hidden_dim = 37;
  shape.vocab_size = 61;
  shape.num_layers = 3;
  shape.rope_layout = RopeLayout::kHalfSplit;
  shape.tied_classifier = false;
  expect_matches_reference(shape, 3, 2, 11);
}

TEST(Transformer, MatchesReferenceWithShapesLargeEnoughToSplitGemms) {
  RandomModelShape shape;  // 256 x 256 projections: several GEMM chunks, 97-token chunks
  shape.dim = 256;
  shape.num_heads = 8;
  shape.num_kv_heads = 4;
  shape.hidden_dim = 300;
  shape.vocab_size = 500;
  expect_matches_reference(shape, 16, 2, 97);
}

TEST(Transformer, SerialAndParallelAreBitIdentical) {
  RandomModelShape shape;
  shape.dim = 256;
  shape.num_heads = 8;
  shape.num_kv_heads = 2;
  shape.hidden_dim = 512;
  shape.vocab_size = 700;
  auto model = testing::make_random_model(shape, 5);
  auto run = [&](int threads) {
    PagedRunner runner(*model, 16, 8192, threads);
    std::vector<float> all;
    for (size_t s = 0; s < 4; ++s) runner.add_sequence();
    auto keep = [&](const std::vector<float>& logits) { all.insert(all.end(), logits.begin(), logits.end()); };
    keep(runner.step({{0, random_tokens(131, shape.vocab_size, 1), true, {}},
                      {1, random_tokens(70, shape.vocab_size, 2), true, {}}}));
    keep(runner.step({{0, {3}, true, {}}, {2, random_tokens(90, shape.vocab_size, 3), false, {}},
                      {1, {4}, true, {}}, {3, random_tokens(33, shape.vocab_size, 4), true, {}}}));
    for (int i = 0; i < 5; ++i) {
      keep(runner.step({{0, {TokenId(5 + i)}, true, {}}, {1, {TokenId(6 + i)}, true, {}},
                        {2, {TokenId(7 + i)}, true, {}}, {3, {TokenId(8 + i)}, true, {}}}));
    }
    return all;
  };
  const auto serial = run(1);
  for (int threads : {2, 3}) {
    const auto parallel = run(threads);
    ASSERT_EQ(serial.size(), parallel.size());
    EXPECT_EQ(0, std::memcmp(serial.data(), parallel.data(), serial.size() * sizeof(float)))
        << "threads = " << threads;
  }
}

TEST(Transformer, BatchedEqualsOneSequenceAtATime) {
  RandomModelShape shape;
  shape.dim = 64;
  shape.num_heads = 4;
  shape.num_kv_heads = 2;
  shape.hidden_dim = 96;
  shape.vocab_size = 128;
  auto model = testing::make_random_model(shape, 9);
  std::vector<std::vector<TokenId>> prompts;
  std::vector<size_t> max_new;
  for (size_t s = 0; s < 6; ++s) {
    prompts.push_back(random_tokens(3 + 11 * s, shape.vocab_size, 100 + s));
    max_new.push_back(12 + s);
  }
  const auto batched = testing::generate_greedy_batched(*model, prompts, max_new, 16, 2);
  const auto chunked = testing::generate_greedy_batched(*model, prompts, max_new, 16, 2, 7);
  for (size_t s = 0; s < prompts.size(); ++s) {
    const auto alone = testing::generate_greedy_batched(*model, {prompts[s]}, {max_new[s]}, 16, 1);
    EXPECT_EQ(alone[0], batched[s]) << "sequence " << s;
    EXPECT_EQ(alone[0], chunked[s]) << "sequence " << s << " with chunked prefill";
    EXPECT_EQ(alone[0].size(), max_new[s]);  // no stop token in this model's random vocabulary
  }
}

TEST(Transformer, BlockSizesGiveTheSameGreedyTokens) {
  RandomModelShape shape;
  shape.vocab_size = 97;
  auto model = testing::make_random_model(shape, 11);
  const std::vector<std::vector<TokenId>> prompts = {random_tokens(37, 97, 1), random_tokens(80, 97, 2),
                                                     random_tokens(1, 97, 3)};
  const std::vector<size_t> max_new = {30, 20, 40};
  const auto expected = testing::generate_greedy_batched(*model, prompts, max_new, 16, 2);
  for (uint32_t block_size : {1u, 64u}) {
    EXPECT_EQ(expected, testing::generate_greedy_batched(*model, prompts, max_new, block_size, 2))
        << "block size " << block_size;
  }
  // The reference agrees too.
  for (size_t s = 0; s < prompts.size(); ++s) {
    ReferenceForward ref(*model);
    ref.prefill(prompts[s]);
    EXPECT_EQ(expected[s], ref.generate_greedy(max_new[s], model->stop_tokens)) << "sequence " << s;
  }
}

TEST(Transformer, RejectsZeroThreads) {
  auto model = testing::make_random_model({}, 1);
  EXPECT_THROW(Transformer(*model, 0), ConfigError);
}

TEST(Transformer, ProducesLogitsOnlyForSamplingSequences) {
  auto model = testing::make_random_model({}, 3);
  PagedRunner runner(*model, 16, 512, 1);
  for (int s = 0; s < 3; ++s) runner.add_sequence();
  const auto& logits = runner.step({{0, {1, 2, 3}, false, {}}, {1, {4}, true, {}}, {2, {5, 6}, true, {}}});
  EXPECT_EQ(logits.size(), 2u * model->config.vocab_size);
  // Rows come in the order of the sampling sequences.
  ReferenceForward second(*model);
  second.prefill(std::vector<TokenId>{5, 6});
  EXPECT_LT(max_relative_error(runner.logits_row(1), second.logits()), 1e-4);
}

}  // namespace
}  // namespace prunekv
