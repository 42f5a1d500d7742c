#include "model/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "model/half.h"
#include "model/ops.h"
#include "tests/testing/quantize.h"
#include "tests/testing/random_vector.h"

namespace prunekv {
namespace {

using testing::random_vector;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// One matrix [out][in] packed alone; y[n][out].
std::vector<float> run(const PackedWeights& w, const std::vector<float>& x, size_t n, size_t p0, size_t p1,
                       std::vector<float> y) {
  const GemmOut out{y.data(), w.part_out(0)};
  gemm_packed(w, x.data(), w.in(), n, &out, p0, p1);
  return y;
}

// Shapes off the panel width, the tile heights (1..6) and the SIMD width on purpose.
const std::vector<std::tuple<size_t, size_t, size_t>> kShapes = {
    {1, 5, 3}, {2, 64, 16}, {5, 67, 129}, {6, 288, 37}, {7, 17, 48}, {13, 172, 64}, {33, 64, 100}, {64, 288, 80}};

TEST(Gemm, PackedMatchesPlainLoopsAndTheScalarFmaChainBitForBit) {
  for (auto [n, in, out] : kShapes) {
    const auto x = random_vector(n * in, 1), wm = random_vector(out * in, 2);
    const GemmPart part{wm.data(), out};
    const PackedWeights w({&part, 1}, in);
    ASSERT_EQ(w.num_panels(), (out + kGemmPanel - 1) / kGemmPanel);
    const auto y = run(w, x, n, 0, w.num_panels(), std::vector<float>(n * out, NAN));
    std::vector<float> plain(n * out), exact(n * out, NAN);
    matmul_rows_reference(plain.data(), x.data(), wm.data(), n, in, out, 0, out);
    const GemmOut exact_out{exact.data(), out};
    gemm_packed_reference(w, x.data(), in, n, &exact_out, 0, w.num_panels());
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], plain[i], 1e-5f * (1 + std::fabs(plain[i])));
    EXPECT_TRUE(same_bits(y, exact)) << n << "x" << in << "x" << out;
  }
}

// F16 weights packed as halves give the bits of the F32 path on the same weights widened (widening
// is exact), for every tile shape, and of the scalar reference on the half panels; halves that are
// subnormal, zero or negative zero included. The batch / split independence above follows from
// that same code path.
TEST(Gemm, HalfPanelsGiveTheBitsOfTheF32PanelsOfTheWidenedWeights) {
  for (auto [n, in, out] : kShapes) {
    const auto x = random_vector(n * in, 5), wm = random_vector(out * in, 6);
    std::vector<uint16_t> halves(out * in);
    std::vector<float> widened(out * in);
    for (size_t i = 0; i < halves.size(); ++i) {
      halves[i] = i % 97 == 3 ? uint16_t{0x0001} : i % 89 == 5 ? uint16_t{0x8000} : testing::float_to_half(wm[i]);
      widened[i] = half_to_float(halves[i]);
    }
    const GemmHalfPart half_part{halves.data(), out};
    const GemmPart f32_part{widened.data(), out};
    const PackedWeights wh({&half_part, 1}, in), wf({&f32_part, 1}, in);
    ASSERT_TRUE(wh.is_half());
    ASSERT_EQ(wh.num_panels(), wf.num_panels());
    const auto yh = run(wh, x, n, 0, wh.num_panels(), std::vector<float>(n * out, NAN));
    const auto yf = run(wf, x, n, 0, wf.num_panels(), std::vector<float>(n * out, NAN));
    std::vector<float> exact(n * out, NAN);
    const GemmOut exact_out{exact.data(), out};
    gemm_packed_reference(wh, x.data(), in, n, &exact_out, 0, wh.num_panels());
    EXPECT_TRUE(same_bits(yh, yf)) << n << "x" << in << "x" << out;
    EXPECT_TRUE(same_bits(yh, exact)) << n << "x" << in << "x" << out;
  }
}

// A token's row has the same bits computed alone, inside batches of any size, and over any
// split of the panels (the Transformer splits by token blocks and panel chunks per thread).
TEST(Gemm, ATokensRowIgnoresTheBatchAroundItAndHowPanelsAreSplit) {
  const size_t in = 96, out = 150, max_n = 64;
  const auto x = random_vector(max_n * in, 3), wm = random_vector(out * in, 4);
  const GemmPart part{wm.data(), out};
  const PackedWeights w({&part, 1}, in);
  std::vector<float> alone(max_n * out);
  for (size_t t = 0; t < max_n; ++t) {
    const GemmOut o{alone.data() + t * out, out};
    gemm_packed(w, x.data() + t * in, in, 1, &o, 0, w.num_panels());
  }
  for (size_t n : {2u, 3u, 5u, 6u, 7u, 12u, 17u, 48u, 64u}) {
    std::vector<float> batched(max_n * out, NAN);
    for (size_t t0 = 0; t0 < max_n; t0 += n) {  // batches of n, the last one shorter
      const GemmOut o{batched.data() + t0 * out, out};
      gemm_packed(w, x.data() + t0 * in, in, std::min(n, max_n - t0), &o, 0, w.num_panels());
    }
    EXPECT_TRUE(same_bits(alone, batched)) << "batches of " << n;
  }
  std::vector<float> pieces(max_n * out, NAN);
  const GemmOut o{pieces.data(), out};
  for (size_t p = 0, len = 1; p < w.num_panels(); p += len, ++len) {
    gemm_packed(w, x.data(), in, max_n, &o, p, std::min(w.num_panels(), p + len));
  }
  EXPECT_TRUE(same_bits(alone, pieces));
}

TEST(Gemm, APanelRangeWritesOnlyItsColumns) {
  const size_t n = 3, in = 10, out = 40;
  const auto x = random_vector(n * in, 5), wm = random_vector(out * in, 6);
  const GemmPart part{wm.data(), out};
  const PackedWeights w({&part, 1}, in);
  const auto parts = run(w, x, n, 1, 2, std::vector<float>(n * out, NAN));
  const auto whole = run(w, x, n, 0, w.num_panels(), std::vector<float>(n * out, NAN));
  for (size_t t = 0; t < n; ++t) {
    for (size_t o = 0; o < out; ++o) {
      if (o >= 16 && o < 32) {
        EXPECT_EQ(parts[t * out + o], whole[t * out + o]);
      } else {
        EXPECT_TRUE(std::isnan(parts[t * out + o])) << t << " " << o;
      }
    }
  }
}

// wq|wk|wv in one PackedWeights: each part lands in its own output, with the bits of the part
// packed alone (a fused call is the same arithmetic, just fewer calls).
TEST(Gemm, FusedPartsWriteTheirOwnOutputsWithTheBitsOfEachPartAlone) {
  const size_t n = 9, in = 40;
  const std::vector<size_t> outs = {40, 20, 20};
  const auto x = random_vector(n * in, 7);
  std::vector<std::vector<float>> mats;
  std::vector<GemmPart> parts;
  for (size_t i = 0; i < outs.size(); ++i) mats.push_back(random_vector(outs[i] * in, 10 + i));
  for (size_t i = 0; i < outs.size(); ++i) parts.push_back({mats[i].data(), outs[i]});
  const PackedWeights fused(parts, in);
  EXPECT_EQ(fused.num_parts(), 3u);
  EXPECT_EQ(fused.total_out(), 80u);
  EXPECT_EQ(fused.num_panels(), 3u + 2u + 2u);  // each part starts on a panel boundary
  std::vector<std::vector<float>> ys;
  std::vector<GemmOut> targets;
  for (size_t o : outs) ys.emplace_back(n * o, NAN);
  for (size_t i = 0; i < outs.size(); ++i) targets.push_back({ys[i].data(), outs[i]});
  gemm_packed(fused, x.data(), in, n, targets.data(), 0, fused.num_panels());
  for (size_t i = 0; i < outs.size(); ++i) {
    const PackedWeights alone({&parts[i], 1}, in);
    EXPECT_TRUE(same_bits(ys[i], run(alone, x, n, 0, alone.num_panels(), std::vector<float>(n * outs[i]))))
        << "part " << i;
  }
}

// Outputs with a row stride wider than the part (a slice of a wider buffer) and x rows with a
// stride wider than `in`.
TEST(Gemm, HonoursTheRowStridesOfXAndY) {
  const size_t n = 8, in = 33, out = 20, ldx = 40, ldy = 50;
  const auto x = random_vector(n * ldx, 8), wm = random_vector(out * in, 9);
  const GemmPart part{wm.data(), out};
  const PackedWeights w({&part, 1}, in);
  std::vector<float> y(n * ldy, -1.0f), dense(n * in), expected(n * out);
  for (size_t t = 0; t < n; ++t) std::memcpy(dense.data() + t * in, x.data() + t * ldx, in * sizeof(float));
  const GemmOut o{y.data(), ldy};
  gemm_packed(w, x.data(), ldx, n, &o, 0, w.num_panels());
  const GemmOut e{expected.data(), out};
  gemm_packed_reference(w, dense.data(), in, n, &e, 0, w.num_panels());
  for (size_t t = 0; t < n; ++t) {
    EXPECT_EQ(0, std::memcmp(y.data() + t * ldy, expected.data() + t * out, out * sizeof(float))) << t;
    for (size_t c = out; c < ldy; ++c) EXPECT_EQ(y[t * ldy + c], -1.0f);
  }
}

}  // namespace
}  // namespace prunekv
