// quant_matmul (both regimes: fused dot kernels and dequantized tiles + sgemm) and each
// instruction set's fused kernel against the scalar reference (dequantize_row, then a double
// dot), for every weight type, the input widths of every model shape, odd row counts, token
// counts on both sides of kFusedMaxTokens and of the kernels' 4-token groups, and row ranges
// that straddle the parts of a fused product.
//
// Tolerance: |y - ref| <= cols * 2^-23 * sum_k |w_k x_k|, the worst case of an fp32 sum of
// `cols` products in any order (the dequantized weights themselves are exact: dequantize_test).
// Where quant_matmul multiplies int8 activations (model/quant_int8.h) it also moves by at most
// the activations' rounding (activation_rounding below); quant_int8_test holds those kernels to
// their own exact reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <random>
#include <vector>

#include "model/dequantize.h"
#include "model/quant_int8.h"
#include "model/quant_kernels.h"
#include "model/quant_matmul.h"
#include "tests/testing/quantize.h"
#include "tests/testing/random_vector.h"

namespace prunekv {
namespace {

// A [rows][cols] matrix of `type`: quantized from normal values where a test quantizer exists,
// random blocks for the K-quants and Q5_0.
std::vector<uint8_t> make_matrix(GgmlType type, size_t rows, size_t cols, uint64_t seed) {
  if (type == GgmlType::kQ4_K || type == GgmlType::kQ6_K || type == GgmlType::kQ5_0)
    return testing::random_blocks(type, rows * cols / ggml_type_traits(type).block_elements, seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> values(rows * cols);
  for (auto& v : values) v = dist(rng);
  return testing::quantize(type, values);
}

// sum_k |w_k x_k| for row r and token t: the scale of the allowed rounding.
double magnitude(const WeightView& w, size_t r, size_t cols, const float* x) {
  std::vector<float> row(cols);
  dequantize_row(w.type, w.row(r, cols), row.data(), cols);
  double sum = 0;
  for (size_t k = 0; k < cols; ++k) sum += std::fabs(double{row[k]} * x[k]);
  return sum;
}

// Whether quant_matmul multiplies int8 activations for this type and token count.
bool uses_int8(GgmlType type, size_t n) { return n <= int8_max_tokens(type); }

constexpr GgmlType kTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0,
                               GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ4_K, GgmlType::kQ6_K};
// dim / hidden of stories260K, 15M, 42M, 110M.
constexpr size_t kWidths[] = {64, 172, 288, 768, 512, 1376, 2048};
constexpr size_t kTokenCounts[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 32, 33};

// sum_k |w_k| * d_b / 2, d_b = max|x| / 127 over x's activation block b (model/quant_int8.h):
// how far the int8 product may move from the fp32 one by quantizing x.
double activation_rounding(const WeightView& w, size_t r, size_t cols, const float* x) {
  const size_t block = int8_activation_block(w.type);
  std::vector<float> row(cols);
  dequantize_row(w.type, w.row(r, cols), row.data(), cols);
  double sum = 0;
  for (size_t b = 0; b < cols / block; ++b) {
    float amax = 0;
    for (size_t k = b * block; k < (b + 1) * block; ++k) amax = std::max(amax, std::fabs(x[k]));
    for (size_t k = b * block; k < (b + 1) * block; ++k) sum += std::fabs(double{row[k]}) * amax / 127.0 / 2;
  }
  return sum;
}

// Within the fp32 rounding bound, and where quant_matmul multiplies int8 activations (n <=
// int8_max_tokens(type)) also within activation_rounding (and twice the
// fp32 bound: the int8 kernels' block terms carry the K-quants' offsets too).
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const WeightView& w, size_t rows,
                  size_t cols, const std::vector<float>& x, size_t n, const std::string& what, bool int8 = false) {
  const double unit = static_cast<double>(cols) * std::ldexp(1.0, -23);
  for (size_t t = 0; t < n; ++t)
    for (size_t r = 0; r < rows; ++r) {
      const float* xt = x.data() + t * cols;
      const double fp32 = unit * magnitude(w, r, cols, xt);
      const double allowed = int8 ? 2 * fp32 + activation_rounding(w, r, cols, xt) * (1 + 1e-6) : fp32 + 1e-30;
      ASSERT_LE(std::fabs(double{got[t * rows + r]} - want[t * rows + r]), allowed)
          << what << " token " << t << " row " << r << ": " << got[t * rows + r] << " vs " << want[t * rows + r];
    }
}

TEST(QuantMatmul, EqualsDequantizeThenDotForEveryTypeWidthAndTokenCount) {
  SCOPED_TRACE(quant_kernel_isa());
  for (GgmlType type : kTypes) {
    for (size_t cols : kWidths) {
      if (!testing::fits_rows(type, cols)) continue;
      const size_t rows = 19;
      const auto bytes = make_matrix(type, rows, cols, cols);
      const WeightView view(type, bytes.data());
      const QuantPart part{view, rows};
      const QuantWeights w({&part, 1}, cols);
      for (size_t n : kTokenCounts) {
        const auto x = testing::random_vector(n * cols, n);
        std::vector<float> got(n * rows, NAN), want(n * rows, NAN);
        const GemmOut got_out{got.data(), rows}, want_out{want.data(), rows};
        quant_matmul(w, x.data(), cols, n, &got_out, 0, rows);
        quant_matmul_reference(w, x.data(), cols, n, &want_out, 0, rows);
        expect_close(got, want, view, rows, cols, x, n, fmt::format("{} cols {} n {}", ggml_type_name(type), cols, n),
                     uses_int8(type, n));
      }
    }
  }
}

TEST(QuantMatmul, EveryInstructionSetsFusedKernelEqualsTheReference) {
  const auto tables = detail::supported_quant_kernels();
  if (tables.empty()) GTEST_SKIP() << "no vector kernels on this CPU";
  for (GgmlType type : kTypes) {
    for (size_t cols : {size_t{172}, size_t{512}, size_t{768}}) {
      if (!testing::fits_rows(type, cols)) continue;
      const size_t rows = 7;
      const auto bytes = make_matrix(type, rows, cols, 5);
      const WeightView view(type, bytes.data());
      const QuantPart part{view, rows};
      const QuantWeights w({&part, 1}, cols);
      for (size_t n : {size_t{1}, size_t{3}, size_t{4}, size_t{6}, size_t{13}}) {
        const auto x = testing::random_vector(n * cols, 9);
        std::vector<float> want(n * rows);
        const GemmOut want_out{want.data(), rows};
        quant_matmul_reference(w, x.data(), cols, n, &want_out, 0, rows);
        for (const auto* k : tables) {
          std::vector<float> got(n * rows, NAN);
          k->dot_rows(type, bytes.data(), ggml_row_bytes(type, cols), cols, rows, x.data(), cols, n, got.data(), rows);
          expect_close(got, want, view, rows, cols, x, n, fmt::format("{} {} cols {} n {}", k->isa, ggml_type_name(type), cols, n));
        }
      }
    }
  }
}

// wq|wk|wv of a GQA layer in different types (as a Q4_K_M file mixes Q4_K and Q6_K), computed
// over row ranges that start and end inside parts.
TEST(QuantMatmul, RowRangesAcrossMixedTypeParts) {
  const size_t cols = 512;
  const size_t outs[] = {512, 128, 128};
  const GgmlType types[] = {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kF32};
  std::vector<std::vector<uint8_t>> data;
  std::vector<QuantPart> parts;
  for (int p = 0; p < 3; ++p) {
    data.push_back(make_matrix(types[p], outs[p], cols, 20 + p));
    parts.push_back({WeightView(types[p], data.back().data()), outs[p]});
  }
  const QuantWeights w(parts, cols);
  EXPECT_EQ(w.total_out(), 768u);
  EXPECT_EQ(w.num_bytes(), 512 * 2 * 144 + 128 * 2 * 210 + 128 * 512 * 4);
  for (size_t n : {size_t{2}, size_t{40}}) {
    const auto x = testing::random_vector(n * cols, 3);
    std::vector<std::vector<float>> got, want;
    std::vector<GemmOut> got_outs, want_outs;
    for (size_t out : outs) {
      got.emplace_back(n * out, NAN);
      want.emplace_back(n * out, NAN);
    }
    for (int p = 0; p < 3; ++p) {
      got_outs.push_back({got[p].data(), outs[p]});
      want_outs.push_back({want[p].data(), outs[p]});
    }
    quant_matmul_reference(w, x.data(), cols, n, want_outs.data(), 0, w.total_out());
    for (const auto& [begin, end] : {std::pair<size_t, size_t>{0, 300}, {300, 580}, {580, 768}})
      quant_matmul(w, x.data(), cols, n, got_outs.data(), begin, end);
    for (int p = 0; p < 3; ++p)
      expect_close(got[p], want[p], parts[p].w, outs[p], cols, x, n, fmt::format("part {} n {}", p, n),
                   uses_int8(types[p], n));
  }
}

}  // namespace
}  // namespace prunekv
