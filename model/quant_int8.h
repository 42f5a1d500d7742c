#pragma once
// Products of quantized weights with int8 activations, as llama.cpp computes them: each token's
// x is quantized once per product into blocks of int8 values with one fp32 scale (max|x| / 127),
// and a weight block times an activation block is summed in integers, then scaled in fp32.
// Integer multiply-adds (AVX2 vpmaddubsw, AVX-512 VNNI vpdpbusd) do four times the work of the
// fp32 decode-and-fma per instruction, which is what batch-1 decode of a 4-bit file is bound by.
//
// Activation blocks: 256 values for the K-quants (one per weight super-block, so a block's
// sub-block sums stay integers until the end of the block), 32 for Q8_0, Q4_0 and Q5_0. Every
// 16 values also keep their integer sum: the K-quants' offsets (Q4_K's mins, Q6_K's -32) are
// applied once per sub-block through them instead of once per value.
//
// Numerics: y = sum_k W[k] * (d_b * q_k) where q_k = round(x_k / d_b) (to nearest even) and
// d_b = max|x| / 127 of x's block b: each x_k moves by at most d_b / 2. That is the whole
// difference from the fp32 product; the integer sums are exact and the kernels differ from the
// reference below only in the order of the fp32 sums of block terms.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/ggml_type.h"

namespace prunekv {

// The activation block of the int8 product for weights of `type` (256 for Q4_K / Q6_K, 32 for
// Q8_0 / Q4_0 / Q5_0); 0 where the type has no int8 product (F32, F16, BF16).
size_t int8_activation_block(GgmlType type);

// n tokens' activations of `cols` values each (cols a multiple of `block`), quantized. Token t's
// values are q[t * cols ..], its block scales d[t * cols / block ..], its sums of 16 values
// sums[t * cols / 16 ..].
struct Int8Activations {
  size_t block = 0, cols = 0, n = 0;
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int16_t> sums;

  // Sizes the buffers (never shrinks them, so a thread-local one stops allocating).
  void resize(size_t block_, size_t cols_, size_t n_);
  const int8_t* q_of(size_t t) const { return q.data() + t * cols; }
  const float* d_of(size_t t) const { return d.data() + t * (cols / block); }
  const int16_t* sums_of(size_t t) const { return sums.data() + t * (cols / 16); }
};

// Scalar: a.q, a.d, a.sums of x's n rows (row t at x + t * ldx), after a.resize(block, cols, n).
// d = max|x| / 127 of the block, q = round-to-nearest-even(x * (127 / max|x|)) (all zero where
// max|x| is 0). The vector kernels give the same bytes.
void quantize_activations_reference(const float* x, size_t ldx, Int8Activations& a);

// a.sums from a.q: the last step of every quantizer.
void int8_activation_sums(Int8Activations& a);

// Scalar, one weight row of `type` (a.cols elements) against token t of a: the exact sum of the
// block terms (each an integer sum times the block's scales, formed in double), and in
// *magnitude the sum of their absolute values: what the fp32 kernels' rounding is bounded by.
double int8_dot_reference(GgmlType type, const uint8_t* row, const Int8Activations& a, size_t t,
                          double* magnitude);

}  // namespace prunekv
