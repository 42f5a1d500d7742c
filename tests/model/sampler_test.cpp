#include "model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"

namespace prunekv {
namespace {

SamplingParams params(float temperature, float top_p = 1.0f, int32_t top_k = 0, uint64_t seed = 0) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_p = top_p;
  p.top_k = top_k;
  p.seed = seed;
  return p;
}

std::vector<TokenId> draw(Sampler& sampler, const std::vector<float>& logits, size_t n) {
  std::vector<TokenId> out;
  for (size_t i = 0; i < n; ++i) out.push_back(sampler.sample(logits));
  return out;
}

TEST(Sampler, GreedyPicksTheLowestIdAmongTies) {
  Sampler sampler(params(0.0f));
  EXPECT_EQ(sampler.sample(std::vector<float>{0.5f, 2.0f, -1.0f, 2.0f}), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{3.0f, 3.0f}), 0);
  EXPECT_EQ(sampler.sample(std::vector<float>{-5.0f, -4.0f, -3.0f}), 2);
}

TEST(Sampler, TopKOfOneIsGreedyAtAnyTemperature) {
  const std::vector<float> logits = {0.1f, 1.5f, 1.49f, -2.0f, 1.5f};
  Sampler sampler(params(5.0f, 1.0f, 1, 123));
  for (TokenId t : draw(sampler, logits, 50)) EXPECT_EQ(t, 1);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i));
  Sampler a(params(1.0f, 0.9f, 0, 77)), b(params(1.0f, 0.9f, 0, 77)), c(params(1.0f, 0.9f, 0, 78));
  const auto first = draw(a, logits, 200);
  EXPECT_EQ(first, draw(b, logits, 200));
  EXPECT_NE(first, draw(c, logits, 200));
}

// Frequencies over many seeded draws match softmax(logits / T) within 5 standard errors.
TEST(Sampler, TemperatureSamplingFollowsTheSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.0f, 1.5f};
  const float temperature = 0.7f;
  std::vector<double> expected(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) total += expected[i] = std::exp(logits[i] / temperature);
  for (double& e : expected) e /= total;

  constexpr size_t kDraws = 40000;
  Sampler sampler(params(temperature, 1.0f, 0, 2024));
  std::vector<size_t> counts(logits.size(), 0);
  for (TokenId t : draw(sampler, logits, kDraws)) ++counts[size_t(t)];
  for (size_t i = 0; i < logits.size(); ++i) {
    const double freq = double(counts[i]) / kDraws;
    const double std_error = std::sqrt(expected[i] * (1 - expected[i]) / kDraws);
    EXPECT_NEAR(freq, expected[i], 5 * std_error) << "token " << i;
  }
}

TEST(Sampler, TopKSamplesOnlyTheKBest) {
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.9f, 2.8f, -1.0f};
  Sampler sampler(params(10.0f, 1.0f, 3, 5));  // hot: without top-k every token would appear
  std::vector<size_t> counts(logits.size(), 0);
  for (TokenId t : draw(sampler, logits, 3000)) ++counts[size_t(t)];
  EXPECT_EQ(counts[0] + counts[2] + counts[5], 0u);
  EXPECT_GT(counts[1], 0u);
  EXPECT_GT(counts[3], 0u);
  EXPECT_GT(counts[4], 0u);
}

TEST(Sampler, TopPKeepsTheSmallestNucleusReachingTheMass) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 at T = 1: top_p 0.75 needs the first two.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  Sampler sampler(params(1.0f, 0.75f, 0, 9));
  std::vector<size_t> counts(logits.size(), 0);
  constexpr size_t kDraws = 20000;
  for (TokenId t : draw(sampler, logits, kDraws)) ++counts[size_t(t)];
  EXPECT_EQ(counts[2] + counts[3], 0u);
  // Renormalised over the nucleus: 0.625 / 0.375.
  const double std_error = std::sqrt(0.625 * 0.375 / kDraws);
  EXPECT_NEAR(double(counts[0]) / kDraws, 0.625, 5 * std_error);
}

TEST(SamplingParams, ValidateRejectsOutOfRangeValues) {
  EXPECT_NO_THROW(params(0.0f).validate());
  EXPECT_NO_THROW(params(1.0f, 1.0f, 40).validate());
  EXPECT_THROW(params(-0.1f).validate(), InputError);
  EXPECT_THROW(params(NAN).validate(), InputError);
  EXPECT_THROW(params(1.0f, 0.0f).validate(), InputError);
  EXPECT_THROW(params(1.0f, 1.01f).validate(), InputError);
  EXPECT_THROW(params(1.0f, 1.0f, -1).validate(), InputError);
  EXPECT_THROW(Sampler(params(1.0f, 2.0f)), InputError);
}

}  // namespace
}  // namespace prunekv
