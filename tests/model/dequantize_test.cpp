// The scalar dequantizers against values worked out by hand from the block layouts, on edge
// blocks (all-zero, largest magnitude, negative and subnormal scales), and the vectorised
// dequantizers (every instruction set this CPU has) bit-identical to them.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "model/dequantize.h"
#include "model/gemm.h"
#include "model/half.h"
#include "model/quant_kernels.h"
#include "tests/testing/quantize.h"

namespace prunekv {
namespace {

void put_half(std::vector<uint8_t>& block, size_t at, uint16_t h) { std::memcpy(block.data() + at, &h, 2); }

std::vector<float> dequantized(GgmlType type, const std::vector<uint8_t>& bytes) {
  const GgmlTypeTraits t = ggml_type_traits(type);
  std::vector<float> out(bytes.size() / t.block_bytes * t.block_elements);
  dequantize_row(type, bytes.data(), out.data(), out.size());
  return out;
}

bool same_bits(float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }

constexpr uint16_t kHalfOne = 0x3C00, kHalfHalf = 0x3800, kHalfQuarter = 0x3400, kHalfMinusTwo = 0xC000;
constexpr uint16_t kHalfMax = 0x7BFF;        // 65504
constexpr uint16_t kHalfMinSubnormal = 0x0001;  // 2^-24

TEST(Dequantize, Q8_0ByHand) {
  std::vector<uint8_t> b(kQ8_0BlockBytes, 0);
  put_half(b, 0, kHalfHalf);
  b[2] = static_cast<uint8_t>(-128);
  b[3] = 127;
  b[33] = static_cast<uint8_t>(-1);
  auto y = dequantized(GgmlType::kQ8_0, b);
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[1], 63.5f);
  EXPECT_EQ(y[31], -0.5f);
  EXPECT_TRUE(same_bits(y[2], 0.0f));
  // Negative scale, largest half, smallest subnormal half.
  put_half(b, 0, kHalfMinusTwo);
  y = dequantized(GgmlType::kQ8_0, b);
  EXPECT_EQ(y[0], 256.0f);
  EXPECT_EQ(y[1], -254.0f);
  EXPECT_TRUE(same_bits(y[2], -0.0f));  // -2 * 0
  put_half(b, 0, kHalfMax);
  y = dequantized(GgmlType::kQ8_0, b);
  EXPECT_EQ(y[0], -8384512.0f);  // 65504 * -128, exact
  EXPECT_EQ(y[1], 8319008.0f);
  put_half(b, 0, kHalfMinSubnormal);
  y = dequantized(GgmlType::kQ8_0, b);
  EXPECT_EQ(y[0], -std::ldexp(1.0f, -17));  // -128 * 2^-24
  EXPECT_EQ(y[1], std::ldexp(127.0f, -24));
}

TEST(Dequantize, Q4_0ByHand) {
  std::vector<uint8_t> b(kQ4_0BlockBytes, 0);
  put_half(b, 0, kHalfOne);
  b[2] = 0x0F;  // element 0: 15 - 8, element 16: 0 - 8
  b[3] = 0x80;  // element 1: 0 - 8,  element 17: 8 - 8
  b[17] = 0x97; // element 15: 7 - 8, element 31: 9 - 8
  auto y = dequantized(GgmlType::kQ4_0, b);
  EXPECT_EQ(y[0], 7.0f);
  EXPECT_EQ(y[16], -8.0f);
  EXPECT_EQ(y[1], -8.0f);
  EXPECT_TRUE(same_bits(y[17], 0.0f));
  EXPECT_EQ(y[15], -1.0f);
  EXPECT_EQ(y[31], 1.0f);
  EXPECT_EQ(y[5], -8.0f);  // a zero byte is -8 in both nibbles
  put_half(b, 0, kHalfMinusTwo);
  y = dequantized(GgmlType::kQ4_0, b);
  EXPECT_EQ(y[0], -14.0f);
  EXPECT_EQ(y[16], 16.0f);
  EXPECT_TRUE(same_bits(y[17], -0.0f));
  put_half(b, 0, kHalfMinSubnormal);
  y = dequantized(GgmlType::kQ4_0, b);
  EXPECT_EQ(y[0], std::ldexp(7.0f, -24));
}

TEST(Dequantize, Q5_0ByHand) {
  std::vector<uint8_t> b(kQ5_0BlockBytes, 0);
  put_half(b, 0, kHalfOne);
  b[2] = 0x01;   // qh bit 0: element 0's top bit
  b[4] = 0x01;   // qh bit 16: element 16's top bit
  b[5] = 0x80;   // qh bit 31: element 31's top bit
  b[6] = 0x0F;   // qs[0]: element 0 low 15 (| 16 = 31), element 16 low 0 (| 16 = 16)
  b[21] = 0xF0;  // qs[15]: element 15 low 0, element 31 low 15 (| 16 = 31)
  auto y = dequantized(GgmlType::kQ5_0, b);
  EXPECT_EQ(y[0], 15.0f);   // 31 - 16
  EXPECT_TRUE(same_bits(y[16], 0.0f));  // 16 - 16
  EXPECT_EQ(y[15], -16.0f);  // 0 - 16
  EXPECT_EQ(y[31], 15.0f);
  EXPECT_EQ(y[1], -16.0f);  // a zero byte and no top bit
  put_half(b, 0, kHalfMinusTwo);
  y = dequantized(GgmlType::kQ5_0, b);
  EXPECT_EQ(y[0], -30.0f);
  EXPECT_EQ(y[15], 32.0f);
  EXPECT_TRUE(same_bits(y[16], -0.0f));
  put_half(b, 0, kHalfMax);
  y = dequantized(GgmlType::kQ5_0, b);
  EXPECT_EQ(y[15], 65504.0f * -16.0f);
  put_half(b, 0, kHalfMinSubnormal);
  y = dequantized(GgmlType::kQ5_0, b);
  EXPECT_EQ(y[0], std::ldexp(15.0f, -24));
}

TEST(Dequantize, Q4_KByHand) {
  std::vector<uint8_t> b(kQ4_KBlockBytes, 0);
  put_half(b, 0, kHalfOne);   // d
  put_half(b, 2, kHalfHalf);  // dmin
  uint8_t* scales = b.data() + 4;
  uint8_t* qs = b.data() + 16;
  scales[0] = 10;    // sub-block 0: scale 10
  scales[4] = 4;     //              min 4
  scales[1] = 0xC0;  // sub-block 1: scale 0; top bits 3 -> sub-block 5's scale bits 4-5
  scales[5] = 0x40;  // sub-block 1: min 0;   top bits 1 -> sub-block 5's min bits 4-5
  scales[9] = 0x21;  // sub-block 5: scale low 4 bits 1, min low 4 bits 2
  uint8_t sc, m;
  q4_k_scale_min(scales, 5, &sc, &m);
  EXPECT_EQ(sc, 49);  // 1 | 3 << 4
  EXPECT_EQ(m, 18);   // 2 | 1 << 4
  qs[0] = 0x53;   // element 0 (sub-block 0, low nibble 3); element 32 (sub-block 1, high nibble 5)
  qs[64] = 0xF0;  // element 128 (sub-block 4, low nibble 0); element 160 (sub-block 5, high nibble 15)
  auto y = dequantized(GgmlType::kQ4_K, b);
  EXPECT_EQ(y[0], 28.0f);    // 1*10*3 - 0.5*4
  EXPECT_EQ(y[1], -2.0f);    // 1*10*0 - 2
  EXPECT_TRUE(same_bits(y[32], 0.0f));  // 1*0*5 - 0
  EXPECT_EQ(y[160], 726.0f);  // 1*49*15 - 0.5*18
  EXPECT_EQ(y[161], -9.0f);
  EXPECT_TRUE(same_bits(y[128], 0.0f));
  // Negative d and dmin, subnormal d.
  put_half(b, 0, kHalfMinusTwo);
  put_half(b, 2, kHalfMinusTwo);
  y = dequantized(GgmlType::kQ4_K, b);
  EXPECT_EQ(y[0], -52.0f);  // -20*3 + 8
  put_half(b, 0, kHalfMinSubnormal);
  put_half(b, 2, 0);
  y = dequantized(GgmlType::kQ4_K, b);
  EXPECT_EQ(y[160], std::ldexp(735.0f, -24));
}

TEST(Dequantize, Q6_KByHand) {
  std::vector<uint8_t> b(kQ6_KBlockBytes, 0);
  uint8_t* ql = b.data();
  uint8_t* qh = b.data() + 128;
  auto* sc = reinterpret_cast<int8_t*>(b.data() + 192);
  put_half(b, 208, kHalfQuarter);
  sc[0] = -3;
  sc[1] = 1;
  sc[2] = 5;
  sc[4] = 7;
  sc[6] = -128;
  sc[8] = 2;
  ql[0] = 0x2F;   // element 0 low 4 bits 15; element 64 low 4 bits 2
  qh[0] = 0xE4;   // top bits: element 0 -> 0, 32 -> 1, 64 -> 2, 96 -> 3
  ql[64] = 0x01;  // second half: element 128 low bits 1
  qh[32] = 0x03;  //              element 128 top bits 3
  auto y = dequantized(GgmlType::kQ6_K, b);
  EXPECT_EQ(y[0], 12.75f);   // 0.25 * -3 * (15 - 32)
  EXPECT_EQ(y[1], 24.0f);    // 0.25 * -3 * (0 - 32)
  EXPECT_EQ(y[16], -8.0f);   // 0.25 * 1 * -32: element 16 takes scale 1
  EXPECT_EQ(y[32], -20.0f);  // 0.25 * 5 * (16 - 32)
  EXPECT_EQ(y[64], 3.5f);    // 0.25 * 7 * (34 - 32)
  EXPECT_EQ(y[96], -512.0f); // 0.25 * -128 * (48 - 32)
  EXPECT_EQ(y[128], 8.5f);   // 0.25 * 2 * (49 - 32)
  put_half(b, 208, kHalfMinSubnormal);
  y = dequantized(GgmlType::kQ6_K, b);
  EXPECT_EQ(y[96], -std::ldexp(2048.0f, -24));
  put_half(b, 208, kHalfMax);
  y = dequantized(GgmlType::kQ6_K, b);
  EXPECT_EQ(y[96], 65504.0f * -128.0f * 16.0f);
}

TEST(Dequantize, AllZeroBlocksAreZero) {
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    const std::vector<uint8_t> b(ggml_type_traits(type).block_bytes, 0);
    for (float v : dequantized(type, b)) ASSERT_EQ(v, 0.0f) << ggml_type_name(type);
  }
}

TEST(Dequantize, PlainTypesAndTheTestQuantizersRoundTrip) {
  const std::vector<float> v = {1.0f, -2.5f, 65504.0f, 6.0e-8f, -0.0f, 3.14159f, 1e-3f, 100.0f};
  const auto f16 = dequantized(GgmlType::kF16, testing::quantize(GgmlType::kF16, v));
  const auto bf16 = dequantized(GgmlType::kBF16, testing::quantize(GgmlType::kBF16, v));
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(f16[i], static_cast<float>(static_cast<_Float16>(v[i]))) << i;
    EXPECT_NEAR(bf16[i], v[i], std::fabs(v[i]) * std::ldexp(1.0f, -8)) << i;
  }
  // 1.0078 lies just below the bf16 1.0078125 (steps of 2^-7): rounding goes up, truncation would give 1.
  EXPECT_EQ(dequantized(GgmlType::kBF16, testing::quantize(GgmlType::kBF16, std::vector<float>{1.0078f}))[0], 1.0078125f);
  // Q4_0: the value of largest magnitude maps exactly to -8 * d.
  std::vector<float> block(32, 0.0f);
  block[3] = -4.0f;
  block[7] = 1.5f;
  const auto q4 = dequantized(GgmlType::kQ4_0, testing::quantize(GgmlType::kQ4_0, block));
  EXPECT_EQ(q4[3], -4.0f);
  EXPECT_EQ(q4[7], 1.5f);
  EXPECT_EQ(q4[0], 0.0f);
}

// The reference values of `rows` x `cols` in the GEMM's panel layout (model/gemm.h), zero padded.
std::vector<float> as_panels(const std::vector<float>& values, size_t rows, size_t cols) {
  const size_t panels = (rows + kGemmPanel - 1) / kGemmPanel;
  std::vector<float> out(panels * cols * kGemmPanel, 0.0f);
  for (size_t r = 0; r < rows; ++r)
    for (size_t k = 0; k < cols; ++k) out[(r / kGemmPanel) * cols * kGemmPanel + k * kGemmPanel + r % kGemmPanel] = values[r * cols + k];
  return out;
}

// Both vector dequantizers of every table against the reference values, bit for bit.
void expect_vector_dequantizers_exact(GgmlType type, const std::vector<uint8_t>& bytes, size_t rows, size_t cols,
                                      const std::vector<float>& expected) {
  const size_t row_bytes = ggml_row_bytes(type, cols);
  const auto panels = as_panels(expected, rows, cols);
  for (const auto* k : detail::supported_quant_kernels()) {
    std::vector<float> got(rows * cols);
    k->dequantize_rows(type, bytes.data(), row_bytes, cols, rows, got.data());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_TRUE(same_bits(got[i], expected[i])) << ggml_type_name(type) << " " << k->isa << " at " << i << ": "
                                                  << got[i] << " vs " << expected[i];
    std::vector<float> got_panels(panels.size(), std::nanf(""));
    k->dequantize_panels(type, bytes.data(), row_bytes, cols, rows, got_panels.data());
    for (size_t i = 0; i < panels.size(); ++i)
      ASSERT_TRUE(same_bits(got_panels[i], panels[i])) << ggml_type_name(type) << " " << k->isa << " panels at " << i
                                                       << ": " << got_panels[i] << " vs " << panels[i];
  }
}

TEST(Dequantize, VectorKernelsAreBitIdenticalToTheReference) {
  if (detail::supported_quant_kernels().empty()) GTEST_SKIP() << "no vector kernels on this CPU";
  // Rows that fill two panels and part of a third (the panel layout's zero padding).
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    for (const size_t rows : {size_t{5}, size_t{37}}) {
      const size_t cols = ggml_type_traits(type).block_elements * 3;
      const auto bytes = testing::random_blocks(type, rows * 3, 11 + rows);
      std::vector<float> expected(rows * cols);
      for (size_t r = 0; r < rows; ++r)
        dequantize_row(type, bytes.data() + r * ggml_row_bytes(type, cols), expected.data() + r * cols, cols);
      expect_vector_dequantizers_exact(type, bytes, rows, cols, expected);
    }
  }
  // Plain types with a tail past the last group of 32 (stories260K's hidden 172).
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16}) {
    const size_t cols = 172, rows = 19;
    std::vector<float> values(rows * cols);
    std::mt19937 rng(3);
    std::normal_distribution<float> dist;
    for (auto& v : values) v = dist(rng);
    const auto bytes = testing::quantize(type, values);
    std::vector<float> expected(rows * cols);
    dequantize_row(type, bytes.data(), expected.data(), rows * cols);
    expect_vector_dequantizers_exact(type, bytes, rows, cols, expected);
  }
}

}  // namespace
}  // namespace prunekv
