#include "model/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "tests/testing/random_vector.h"

namespace prunekv {
namespace {

using testing::random_vector;

TEST(Ops, MatmulRowsReferenceComputesItsColumnsOnly) {
  const size_t n = 3, in = 10, out = 20;
  const auto x = random_vector(n * in, 3), w = random_vector(out * in, 4);
  std::vector<float> y(n * out, NAN);
  matmul_rows_reference(y.data(), x.data(), w.data(), n, in, out, 8, 20);
  for (size_t t = 0; t < n; ++t) {
    for (size_t o = 0; o < out; ++o) {
      if (o < 8) {
        EXPECT_TRUE(std::isnan(y[t * out + o]));
        continue;
      }
      double expected = 0.0;
      for (size_t i = 0; i < in; ++i) expected += double(x[t * in + i]) * w[o * in + i];
      EXPECT_NEAR(y[t * out + o], expected, 1e-5 * (1 + std::fabs(expected)));
    }
  }
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

// The vector path (full groups of 8 and a tail) over the whole useful range of the gate,
// including values where exp(-g) would overflow or underflow.
TEST(Ops, SwigluMatchesDoublePrecisionAcrossTheRange) {
  const size_t n = 203;
  std::vector<float> gate(n), up = random_vector(n, 9);
  for (size_t i = 0; i < n; ++i) gate[i] = -100.0f + 200.0f * float(i) / float(n - 1);
  const std::vector<float> g0 = gate;
  swiglu(gate.data(), up.data(), n);
  for (size_t i = 0; i < n; ++i) {
    const double g = g0[i], expected = g / (1 + std::exp(-g)) * up[i];
    EXPECT_NEAR(gate[i], expected, 1e-6 * std::max(1.0, std::abs(expected))) << "g = " << g;
  }
}

}  // namespace
}  // namespace prunekv
