#include "model/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <numeric>
#include <random>
#include <vector>

namespace prunekv {
namespace {

std::vector<float> random_vector(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

TEST(Ops, MatmulRowsMatchesPlainLoopsForOneAndManyRows) {
  // Sizes off SIMD widths and row-group sizes on purpose.
  for (size_t n : {1u, 2u, 7u, 33u}) {
    for (auto [in, out] : {std::pair<size_t, size_t>{5, 3}, {64, 64}, {67, 129}}) {
      const auto x = random_vector(n * in, 1), w = random_vector(out * in, 2);
      std::vector<float> y(n * out, -7.0f);
      matmul(y.data(), x.data(), w.data(), n, in, out);
      for (size_t r = 0; r < n; ++r) {
        for (size_t o = 0; o < out; ++o) {
          double expected = 0.0;
          for (size_t i = 0; i < in; ++i) expected += double(x[r * in + i]) * w[o * in + i];
          EXPECT_NEAR(y[r * out + o], expected, 1e-5 * (1 + std::fabs(expected))) << n << "x" << in << "x" << out;
        }
      }
    }
  }
}

// The SIMD kernel against the plain loops, and bit-identical however rows and tokens are split
// (the Transformer splits products by thread count; serial == parallel relies on this).
TEST(Ops, MatmulRowsMatchesReferenceAndIgnoresHowTheProductIsSplit) {
  for (auto [n, in, out] : {std::tuple<size_t, size_t, size_t>{1, 288, 37}, {7, 64, 9}, {50, 172, 13}, {5, 3, 6}}) {
    const auto x = random_vector(n * in, 3), w = random_vector(out * in, 4);
    std::vector<float> whole(n * out), ref(n * out), split(n * out, NAN);
    matmul(whole.data(), x.data(), w.data(), n, in, out);
    matmul_rows_reference(ref.data(), x.data(), w.data(), n, in, out, 0, out);
    for (size_t i = 0; i < whole.size(); ++i) EXPECT_NEAR(whole[i], ref[i], 1e-5f * (1 + std::fabs(ref[i])));
    for (size_t t = 0; t < n; ++t) {  // one token at a time, rows in pieces of 1, 2, 3, ...
      for (size_t r = 0, len = 1; r < out; r += len, ++len) {
        matmul_rows(split.data() + t * out, x.data() + t * in, w.data(), 1, in, out, r, std::min(out, r + len));
      }
    }
    EXPECT_EQ(0, std::memcmp(whole.data(), split.data(), whole.size() * sizeof(float))) << n << "x" << in << "x" << out;
  }
}

TEST(Ops, MatmulRowsWritesOnlyItsColumns) {
  const size_t n = 3, in = 10, out = 20;
  const auto x = random_vector(n * in, 3), w = random_vector(out * in, 4);
  std::vector<float> whole(n * out), parts(n * out, NAN);
  matmul(whole.data(), x.data(), w.data(), n, in, out);
  matmul_rows(parts.data(), x.data(), w.data(), n, in, out, 0, 8);
  for (size_t r = 0; r < n; ++r) EXPECT_TRUE(std::isnan(parts[r * out + 8]));
  matmul_rows(parts.data(), x.data(), w.data(), n, in, out, 8, 20);
  EXPECT_EQ(whole, parts);
}

TEST(Ops, RopeAdjacentPairsMatchesLlama2cRunC) {
  const size_t heads = 2, head_dim = 8;
  const Pos pos = 13;
  auto vec = random_vector(heads * head_dim, 5);
  auto expected = vec;
  // llama2.c run.c: for even i, freq = 1 / 10000^((i % head_size) / head_size).
  for (size_t i = 0; i < heads * head_dim; i += 2) {
    const float freq = 1.0f / std::pow(10000.0f, float(i % head_dim) / float(head_dim));
    const float val = float(pos) * freq;
    const float v0 = expected[i], v1 = expected[i + 1];
    expected[i] = v0 * std::cos(val) - v1 * std::sin(val);
    expected[i + 1] = v0 * std::sin(val) + v1 * std::cos(val);
  }
  std::vector<float> cos(head_dim / 2), sin(head_dim / 2);
  rope_angles(cos.data(), sin.data(), pos, head_dim, 10000.0f);
  rope(vec.data(), heads, head_dim, cos.data(), sin.data(), RopeLayout::kAdjacentPairs);
  for (size_t i = 0; i < vec.size(); ++i) EXPECT_FLOAT_EQ(vec[i], expected[i]) << i;
}

TEST(Ops, RopeHalfSplitRotatesElementWithElementHalfAHeadAway) {
  const size_t head_dim = 6;
  const Pos pos = 5;
  auto vec = random_vector(head_dim, 6);
  auto expected = vec;
  for (size_t k = 0; k < head_dim / 2; ++k) {
    const double angle = pos / std::pow(500.0, 2.0 * k / head_dim);
    const double a = expected[k], b = expected[k + 3];
    expected[k] = float(a * std::cos(angle) - b * std::sin(angle));
    expected[k + 3] = float(a * std::sin(angle) + b * std::cos(angle));
  }
  std::vector<float> cos(3), sin(3);
  rope_angles(cos.data(), sin.data(), pos, head_dim, 500.0f);
  rope(vec.data(), 1, head_dim, cos.data(), sin.data(), RopeLayout::kHalfSplit);
  for (size_t i = 0; i < vec.size(); ++i) EXPECT_NEAR(vec[i], expected[i], 1e-5) << i;
}

TEST(Ops, RopeAtPositionZeroIsIdentity) {
  auto vec = random_vector(16, 7);
  const auto original = vec;
  std::vector<float> cos(4), sin(4);
  rope_angles(cos.data(), sin.data(), 0, 8, 10000.0f);
  rope(vec.data(), 2, 8, cos.data(), sin.data(), RopeLayout::kHalfSplit);
  EXPECT_EQ(vec, original);
}

TEST(Ops, RmsnormScalesToUnitRootMeanSquare) {
  const auto x = random_vector(37, 8);
  const std::vector<float> ones(37, 1.0f);
  std::vector<float> y(37);
  rmsnorm(y.data(), x.data(), ones.data(), 37, 0.0f);
  double ss = 0.0;
  for (float v : y) ss += double(v) * v;
  EXPECT_NEAR(ss / 37, 1.0, 1e-5);
  // Weights multiply element-wise; the norm runs in place.
  std::vector<float> twice(37, 2.0f), z = x;
  rmsnorm(z.data(), z.data(), twice.data(), 37, 0.0f);
  for (size_t i = 0; i < 37; ++i) EXPECT_FLOAT_EQ(z[i], 2 * y[i]);
}

TEST(Ops, SoftmaxIsStableAndSumsToOne) {
  std::vector<float> x = {1000.0f, 999.0f, -1000.0f};
  softmax(x.data(), x.size());
  EXPECT_NEAR(std::accumulate(x.begin(), x.end(), 0.0), 1.0, 1e-6);
  EXPECT_NEAR(x[0] / x[1], std::exp(1.0), 1e-4);
  EXPECT_EQ(x[2], 0.0f);
}

TEST(Ops, SwigluIsSiluOfGateTimesUp) {
  std::vector<float> gate = {-2.0f, 0.0f, 3.0f}, up = {1.5f, 4.0f, -0.5f};
  swiglu(gate.data(), up.data(), 3);
  for (size_t i = 0; i < 3; ++i) {
    const double g = std::vector<double>{-2.0, 0.0, 3.0}[i];
    EXPECT_NEAR(gate[i], g / (1 + std::exp(-g)) * up[i], 1e-6);
  }
}

}  // namespace
}  // namespace prunekv
