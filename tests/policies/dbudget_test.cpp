// The dbudget cut against a direct O(N^2 * H) evaluation of the paper's formula (method.md,
// steps 4-6), on hand-made and seeded random last-row statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "policies/dbudget_rule.h"
#include "policies/policy_factories.h"
#include "tests/policies/prune_fixture.h"

namespace prunekv {
namespace {

using testing::PruneFixture;

constexpr size_t kSinks = 4;

// 1 - F(c)/F_full straight from the definition: every sum recomputed from scratch.
double brute_force_ratio(const std::vector<float>& rows, size_t num_heads, size_t n, size_t c) {
  double f_full = 0.0, f_c = 0.0;
  for (size_t h = 0; h < num_heads; ++h) {
    double e = 0.0, r = 0.0;
    for (size_t j = kSinks; j < n; ++j) {
      const double a = rows[h * n + j];
      e += a * a;
      if (j >= kSinks + c) r += a * a;
    }
    f_full += std::sqrt(e) / double(num_heads);
    f_c += std::sqrt(r) / double(num_heads);
  }
  return f_full == 0.0 ? 0.0 : 1.0 - f_c / f_full;
}

// The largest c <= n - m - 1 (the last token stays) with ratio(c) <= T, by trying every c.
size_t brute_force_evict_count(const std::vector<float>& rows, size_t num_heads, size_t n, double threshold) {
  size_t best = 0;
  for (size_t c = 0; c + kSinks + 1 <= n; ++c) {
    if (brute_force_ratio(rows, num_heads, n, c) <= threshold) best = c;
  }
  return best;
}

size_t rule(const std::vector<float>& rows, size_t num_heads, size_t n, double threshold) {
  return detail::dbudget_evict_count(rows, num_heads, n, kSinks, threshold);
}

// Softmax-like rows: positive weights summing to 1 per head, with a recency bias and a few spikes.
std::vector<float> random_rows(std::mt19937& rng, size_t num_heads, size_t n) {
  std::vector<float> rows(num_heads * n);
  std::exponential_distribution<float> noise(1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (size_t h = 0; h < num_heads; ++h) {
    float sum = 0.0f;
    for (size_t j = 0; j < n; ++j) {
      float w = noise(rng) * (1.0f + 4.0f * float(j) / float(n));
      if (unit(rng) < 0.03f) w *= 20.0f;
      rows[h * n + j] = w;
      sum += w;
    }
    for (size_t j = 0; j < n; ++j) rows[h * n + j] /= sum;
  }
  return rows;
}

TEST(DBudgetRule, EqualsBruteForceOnRandomRows) {
  std::mt19937 rng(20250216);
  size_t nonzero_cuts = 0;
  for (size_t n : {6, 7, 16, 17, 50, 129, 300}) {
    for (size_t num_heads : {1, 2, 8}) {
      for (double threshold : {0.0, 0.001, 0.01, 0.05, 0.3}) {
        const std::vector<float> rows = random_rows(rng, num_heads, n);
        const size_t expected = brute_force_evict_count(rows, num_heads, n, threshold);
        EXPECT_EQ(rule(rows, num_heads, n, threshold), expected) << "n=" << n << " heads=" << num_heads << " T=" << threshold;
        nonzero_cuts += expected > 0;
      }
    }
  }
  EXPECT_GT(nonzero_cuts, 30u);  // the sweep exercises real cuts, not only "keep everything"
}

TEST(DBudgetRule, RatioNeverDecreasesWithTheCut) {
  std::mt19937 rng(7);
  for (size_t n : {10, 64, 200}) {
    const std::vector<float> rows = random_rows(rng, 4, n);
    double previous = -1.0;
    for (size_t c = 0; c + kSinks + 1 <= n; ++c) {
      const double ratio = brute_force_ratio(rows, 4, n, c);
      EXPECT_GE(ratio, previous) << "n=" << n << " c=" << c;
      previous = ratio;
    }
  }
}

TEST(DBudgetRule, NothingToEvictUpToFiveTokens) {
  // N <= 4: only sinks. N = 5: the one candidate is the last token, which always stays.
  for (size_t n = 0; n <= 5; ++n) {
    const std::vector<float> rows(2 * n, 0.1f);
    EXPECT_EQ(rule(rows, 2, n, 0.5), 0u) << "n=" << n;
    EXPECT_EQ(brute_force_evict_count(rows, 2, n, 0.5), 0u);
  }
}

TEST(DBudgetRule, SixTokensEvictTheOlderCandidateOnlyWhenItCarriesLittle) {
  // Candidates are positions 4 and 5 (the last). Position 4 carries 0.1 vs 0.9: evicting it
  // costs 1 - 0.9/sqrt(0.82) = 0.0061, within T = 0.01 but not T = 0.005.
  const std::vector<float> rows = {0.0f, 0.0f, 0.0f, 0.0f, 0.1f, 0.9f};
  EXPECT_EQ(rule(rows, 1, 6, 0.01), 1u);
  EXPECT_EQ(rule(rows, 1, 6, 0.005), 0u);
  EXPECT_EQ(brute_force_evict_count(rows, 1, 6, 0.01), 1u);
  EXPECT_EQ(brute_force_evict_count(rows, 1, 6, 0.005), 0u);
}

TEST(DBudgetRule, AllAttentionOnTheSinksEvictsEveryCandidateButTheLast) {
  const size_t n = 40;
  std::vector<float> rows(3 * n, 0.0f);
  for (size_t h = 0; h < 3; ++h) {
    for (size_t j = 0; j < kSinks; ++j) rows[h * n + j] = 0.25f;
  }
  EXPECT_EQ(rule(rows, 3, n, 0.01), n - kSinks - 1);
  EXPECT_EQ(rule(rows, 3, n, 0.0), n - kSinks - 1);
  EXPECT_EQ(brute_force_evict_count(rows, 3, n, 0.0), n - kSinks - 1);
}

TEST(DBudgetRule, AllAttentionOnTheLastTokenEvictsEveryOtherCandidate) {
  const size_t n = 33;
  std::vector<float> rows(2 * n, 0.0f);
  rows[n - 1] = 1.0f;
  rows[2 * n - 1] = 1.0f;
  EXPECT_EQ(rule(rows, 2, n, 0.0), n - kSinks - 1);
  EXPECT_EQ(brute_force_evict_count(rows, 2, n, 0.0), n - kSinks - 1);
}

TEST(DBudgetRule, ThresholdZeroKeepsEveryCandidateThatCarriesAttention) {
  std::mt19937 rng(3);
  const std::vector<float> rows = random_rows(rng, 4, 100);
  EXPECT_EQ(rule(rows, 4, 100, 0.0), 0u);
  // Zero attention on the oldest candidates: T = 0 still evicts exactly those.
  std::vector<float> head_start_zero = rows;
  for (size_t h = 0; h < 4; ++h) {
    for (size_t j = kSinks; j < kSinks + 10; ++j) head_start_zero[h * 100 + j] = 0.0f;
  }
  EXPECT_EQ(rule(head_start_zero, 4, 100, 0.0), 10u);
  EXPECT_EQ(brute_force_evict_count(head_start_zero, 4, 100, 0.0), 10u);
}

TEST(DBudgetRule, UniformAttentionTiesFollowTheFormula) {
  // Equal weights on every candidate: ratio(c) = 1 - sqrt((K - c) / K) for K candidates.
  const size_t n = 104;  // K = 100
  const std::vector<float> rows(2 * n, 1.0f / float(n));
  for (double threshold : {0.0, 0.01, 0.1, 0.5}) {
    const size_t expected = brute_force_evict_count(rows, 2, n, threshold);
    EXPECT_EQ(rule(rows, 2, n, threshold), expected) << "T=" << threshold;
    // Closed form: the largest c with sqrt(1 - c/100) >= 1 - T.
    const auto closed = static_cast<size_t>(std::floor(100.0 * (1.0 - (1.0 - threshold) * (1.0 - threshold)) + 1e-9));
    EXPECT_EQ(expected, std::min<size_t>(closed, 99)) << "T=" << threshold;
  }
}

TEST(DBudgetRule, RatioExactlyAtTheThresholdEvicts) {
  // Candidates 4..7 carry 0.25 each: E = 1/4, sqrt = 1/2. After evicting 3, R = 1/16, sqrt =
  // 1/4: ratio = 0.5 exactly (all values exact in binary), and "<= T" allows it.
  const std::vector<float> rows = {0.0f, 0.0f, 0.0f, 0.0f, 0.25f, 0.25f, 0.25f, 0.25f};
  EXPECT_EQ(rule(rows, 1, 8, 0.5), 3u);
  EXPECT_EQ(brute_force_evict_count(rows, 1, 8, 0.5), 3u);
  EXPECT_EQ(rule(rows, 1, 8, 0.4999), 2u);
}

// Writes rows [H][n] into the fixture's kLastRow statistics (query head h = kv_head * G + g) of
// one layer.
void write_last_rows(PruneFixture& f, uint32_t layer, const std::vector<float>& rows, size_t n) {
  for (uint32_t kv_head = 0; kv_head < f.layout.num_kv_heads; ++kv_head) {
    for (uint32_t g = 0; g < f.group; ++g) {
      const size_t h = size_t{kv_head} * f.group + g;
      for (size_t j = 0; j < n; ++j) f.set_stat(layer, kv_head, j, SlotStat::kLastRow, g, rows[h * n + j]);
    }
  }
}

TEST(DBudgetPolicy, CutsEveryLayerFromTwoUpAsTheBruteForceSaysWithGqa) {
  for (uint32_t group : {1u, 2u, 4u}) {
    SCOPED_TRACE(::testing::Message() << "G=" << group);
    const size_t n = 150;
    PruneFixture f(/*num_layers=*/5, /*num_kv_heads=*/2, group);
    f.append(0, n);
    std::mt19937 rng(100 + group);
    std::vector<size_t> expected(5, 0);
    for (uint32_t layer = 0; layer < 5; ++layer) {
      const std::vector<float> rows = random_rows(rng, f.num_query_heads(), n);
      write_last_rows(f, layer, rows, n);
      if (layer >= 2) expected[layer] = brute_force_evict_count(rows, f.num_query_heads(), n, 0.01);
    }
    const auto policy = detail::make_dbudget_policy({});
    const PrunePlan plan = policy->select(f.view(int32_t(n)));
    EXPECT_TRUE(plan.block_rounded);
    EXPECT_TRUE(plan.keeps.empty());
    std::vector<size_t> got(5, 0);
    for (const PrunePlan::LayerCut& cut : plan.cuts) {
      ASSERT_GE(cut.layer, 2u);
      EXPECT_EQ(cut.first_pos, 4);
      got[cut.layer] = size_t(cut.last_pos - cut.first_pos + 1);
    }
    EXPECT_EQ(got, expected);
  }
}

TEST(DBudgetPolicy, GroupsQueryHeadsOfOneKvHeadIntoTheMean) {
  // G = 4: only query head 5 (KV head 1, g = 1) attends to old tokens. A rule that read one
  // query head per KV head, or the wrong one, would cut differently.
  const size_t n = 40;
  PruneFixture f(3, 2, 4);
  f.append(0, n);
  std::vector<float> rows(8 * n, 0.0f);
  for (size_t h = 0; h < 8; ++h) rows[h * n + n - 1] = 1.0f;
  rows[5 * n + 10] = 1.0f;
  write_last_rows(f, 2, rows, n);
  const size_t expected = brute_force_evict_count(rows, 8, n, 0.01);
  ASSERT_EQ(expected, 6u);  // positions 4..9 carry nothing; position 10 costs 0.05 > T
  const PrunePlan plan = detail::make_dbudget_policy({})->select(f.view(int32_t(n)));
  ASSERT_EQ(plan.cuts.size(), 1u);
  EXPECT_EQ(plan.cuts[0].layer, 2u);
  EXPECT_EQ(plan.cuts[0].first_pos, 4);
  EXPECT_EQ(plan.cuts[0].last_pos, 9);
}

TEST(DBudgetPolicy, LeavesTwoLayerModelsAndShortPromptsAlone) {
  {
    PruneFixture f(2, 1, 2);
    f.append(0, 50);  // statistics all zero: every candidate would go in layer 2+
    EXPECT_TRUE(detail::make_dbudget_policy({})->select(f.view(50)).cuts.empty());
  }
  {
    PruneFixture f(4, 1, 2);
    f.append(0, 5);
    EXPECT_TRUE(detail::make_dbudget_policy({})->select(f.view(5)).cuts.empty());
  }
}

TEST(DBudgetPolicy, ExactVariantAsksForTokenExactCuts) {
  PruneFixture f(3, 1, 1);
  f.append(0, 64);
  const PrunePlan plan = detail::make_dbudget_policy({.threshold = 0.01, .exact = true})->select(f.view(64));
  EXPECT_FALSE(plan.block_rounded);
  ASSERT_EQ(plan.cuts.size(), 1u);  // zero statistics: everything but sinks and the last goes
  EXPECT_EQ(plan.cuts[0].first_pos, 4);
  EXPECT_EQ(plan.cuts[0].last_pos, 62);
}

TEST(DBudgetPolicy, IgnoresDecodeSlots) {
  // Decode positions (>= prompt_len) are not candidates even when they carry attention.
  PruneFixture f(3, 1, 1);
  f.append(0, 20);
  f.append(20, 3);
  for (size_t slot = 0; slot < 23; ++slot) f.set_stat(2, 0, slot, SlotStat::kLastRow, 0, slot >= 19 ? 1.0f : 0.0f);
  const PrunePlan plan = detail::make_dbudget_policy({})->select(f.view(20));
  ASSERT_EQ(plan.cuts.size(), 1u);
  EXPECT_EQ(plan.cuts[0].first_pos, 4);
  EXPECT_EQ(plan.cuts[0].last_pos, 18);
}

}  // namespace
}  // namespace prunekv
