// The int8-activation products (model/quant_int8.h): every instruction set's activation
// quantizer gives the reference's bytes, scales and sums, and its dot kernel equals the scalar
// reference (exact integer sums, block terms in double) within the rounding of fp32 sums of
// block terms: |y - ref| <= (blocks + 16) * 2^-23 * magnitude, magnitude the sum of the
// absolute values of every product the kernels form (int8_dot_reference). quant_matmul_test
// checks the whole product against the fp32 one.
#include "model/quant_int8.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/dequantize.h"
#include "model/quant_kernels.h"
#include "tests/testing/quantize.h"
#include "tests/testing/random_vector.h"

namespace prunekv {
namespace {

constexpr GgmlType kInt8Types[] = {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ4_K,
                                   GgmlType::kQ6_K};

// Activations with the cases a quantizer can get wrong: a zero block, a block of one value, ties
// at .5 after scaling, a lone huge value, negative and positive maxima.
std::vector<float> awkward_activations(size_t n, size_t cols, uint64_t seed) {
  auto x = testing::random_vector(n * cols, seed);
  for (size_t k = 0; k < std::min<size_t>(cols, 32); ++k) x[k] = 0.0f;  // zero block
  if (cols >= 64)
    for (size_t k = 32; k < 64; ++k) x[k] = -0.25f;  // constant block
  if (cols >= 96) {  // ties: the scale is 1, every value halfway between two integers
    for (size_t k = 64; k < 96; ++k) x[k] = static_cast<float>(k) - 80.5f;
    x[64] = 127.0f;
  }
  if (n > 1) x[cols + 5] = 1e30f;
  if (n > 2) x[2 * cols + cols / 2] = -3e-30f;
  return x;
}

TEST(QuantInt8, EveryInstructionSetQuantizesActivationsLikeTheReference) {
  const auto tables = detail::supported_quant_kernels();
  if (tables.empty()) GTEST_SKIP() << "no vector kernels on this CPU";
  for (size_t block : {size_t{32}, size_t{256}}) {
    for (size_t cols : {size_t{256}, size_t{768}, size_t{2048}}) {
      const size_t n = 5;
      const auto x = awkward_activations(n, cols, cols + block);
      Int8Activations want;
      want.resize(block, cols, n);
      quantize_activations_reference(x.data(), cols, want);
      // Spot checks of the reference itself: the zero block, the scale, the ties.
      EXPECT_EQ(want.d[0], block == 32 ? 0.0f : 1.0f);  // 256: the block of the ties, max 127
      EXPECT_EQ(want.q[0], 0);
      EXPECT_EQ(want.q[cols + 5], 127);
      EXPECT_EQ(want.d[cols / block], 1e30f / 127.0f);
      for (const auto* k : tables) {
        Int8Activations got;
        got.resize(block, cols, n);
        k->quantize_activations(x.data(), cols, got);
        SCOPED_TRACE(fmt::format("{} block {} cols {}", k->isa, block, cols));
        EXPECT_EQ(got.q, want.q);
        EXPECT_EQ(got.d, want.d);
        EXPECT_EQ(got.sums, want.sums);
      }
    }
  }
}

TEST(QuantInt8, ReferenceEqualsTheDequantizedProduct) {
  // The integer form (codes, scales, offsets through the sums) against dequantize_row times the
  // dequantized activations: the same number up to double and fp32 weight rounding.
  for (GgmlType type : kInt8Types) {
    const size_t cols = 512;
    const auto bytes = testing::random_blocks(type, cols / ggml_type_traits(type).block_elements, 11);
    const auto x = testing::random_vector(cols, 12);
    Int8Activations a;
    a.resize(int8_activation_block(type), cols, 1);
    quantize_activations_reference(x.data(), cols, a);
    std::vector<float> w(cols);
    dequantize_row(type, bytes.data(), w.data(), cols);
    double want = 0.0, scale = 0.0;
    for (size_t k = 0; k < cols; ++k) {
      const double xk = double{a.d[k / a.block]} * a.q[k];
      want += double{w[k]} * xk;
      scale += std::fabs(double{w[k]} * xk);
    }
    double magnitude = 0.0;
    const double got = int8_dot_reference(type, bytes.data(), a, 0, &magnitude);
    EXPECT_NEAR(got, want, 1e-6 * scale + 1e-30) << ggml_type_name(type);
    EXPECT_GE(magnitude, scale * (1 - 1e-12)) << ggml_type_name(type);
  }
}

TEST(QuantInt8, EveryInstructionSetsDotKernelEqualsTheReference) {
  const auto tables = detail::supported_quant_kernels();
  if (tables.empty()) GTEST_SKIP() << "no vector kernels on this CPU";
  for (GgmlType type : kInt8Types) {
    for (size_t cols : {size_t{64}, size_t{288}, size_t{512}, size_t{768}, size_t{1376}, size_t{2048}}) {
      if (!testing::fits_rows(type, cols)) continue;
      const size_t rows = 7, row_bytes = ggml_row_bytes(type, cols);
      const auto bytes =
          testing::random_blocks(type, rows * cols / ggml_type_traits(type).block_elements, cols);
      for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{5}, size_t{8}}) {
        const auto x = awkward_activations(n, cols, n);
        Int8Activations a;
        a.resize(int8_activation_block(type), cols, n);
        quantize_activations_reference(x.data(), cols, a);
        const double unit = static_cast<double>(cols / a.block + 16) * std::ldexp(1.0, -23);
        for (const auto* k : tables) {
          std::vector<float> y(n * rows, NAN);
          k->int8_dot_rows(type, bytes.data(), row_bytes, rows, a, y.data(), rows);
          for (size_t t = 0; t < n; ++t)
            for (size_t r = 0; r < rows; ++r) {
              double magnitude = 0.0;
              const double want = int8_dot_reference(type, bytes.data() + r * row_bytes, a, t, &magnitude);
              ASSERT_LE(std::fabs(y[t * rows + r] - want), unit * magnitude + 1e-30)
                  << k->isa << " " << ggml_type_name(type) << " cols " << cols << " n " << n << " token " << t
                  << " row " << r << ": " << y[t * rows + r] << " vs " << want;
            }
        }
      }
    }
  }
}

}  // namespace
}  // namespace prunekv
