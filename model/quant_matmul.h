#pragma once
// Matrix products on weights in their file's type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K),
// read in place from the memory map: y[t][o] = x[t] . W[o].
//
// Three regimes, chosen by the weight type and the number of tokens n:
// - the quantized types (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K), n <= int8_max_tokens(type) (decode):
//   x is quantized to int8 once per call and multiplied in integers, each weight row streamed
//   once per 4 tokens (model/quant_int8.h). This changes the numbers by x's int8 rounding, as
//   llama.cpp's products do.
// - other n <= kFusedMaxTokens (BF16, and F16 or F32 called here directly: a model's F32 and F16
//   products run on packed panels instead, model/packed_model.h): fused dequantize-and-dot
//   kernels stream each weight row once per 4 tokens, decoding it in registers. Where the vector
//   kernels exist, the quantized types never come here (their int8 limits exceed kFusedMaxTokens).
// - larger n (prefill, large batches): tiles of kQuantTileRows rows are dequantized to fp32
//   straight into the panels of the F32 path's register-blocked GEMM kernel (model/gemm.h) and
//   multiplied there; the decode cost is spread over the n tokens. (OpenBLAS sgemm on the same
//   tiles came first: stories110M shape, Q8_0, batched-bench -npp 64 -ntg 16 -npl 1,16,64 -t 2,
//   its S_PP was 0.43-0.58x the F32 file's in the same run; with this kernel 0.88-1.20x.)
// The kernels are chosen at run time: AVX-512 (F/BW/VL/DQ, and VNNI where the CPU has it), else
// AVX2 + FMA + F16C, else the scalar reference (fp32 throughout). The fp32 paths equal
// quant_matmul_reference within the rounding of an fp32 dot product (summation order differs;
// the dequantized values do not); the int8 path equals int8_dot_reference within the rounding
// of fp32 sums of its block terms.
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "model/gemm.h"
#include "model/weight_view.h"

namespace prunekv {

// The crossover, measured with prunekv_microbench BM_QuantMatmul (stories110M's w1, 768 x 2048,
// one thread, CPU time, on a Zen 4 loaded by builds; thousands of tok/s, fused / tiles): n = 8:
// F16 21.4 / 15.1, Q8_0 21.8 / 13.4, Q4_0 18.4 / 16.3, Q4_K 18.4 / 14.5, Q6_K 14.4 / 9.1;
// n = 16: F16 22.4 / 22.2, Q8_0 17.6 / 21.7, Q4_0 20.4 / 23.7, Q4_K 18.3 / 21.1, Q6_K 14.4 / 18.4.
inline constexpr size_t kFusedMaxTokens = 8;
// Up to this many tokens, weights of a type with an int8 product (model/quant_int8.h)
// multiply int8-quantized activations instead: the K-quants (Q4_K, Q6_K) up to
// kInt8KQuantMaxTokens, the 32-value types (Q8_0, Q4_0, Q5_0) up to kInt8MaxTokens. (At 16
// tokens the int8 product beats the panel GEMM on Q8_0: batched-bench -npp 32 -ntg 96 -npl 16
// -t 2, S_TG, three interleaved rounds, 8 -> 16: synth110M-q8_0 357/340/375 -> 457/447/502,
// synth42M-q8_0 985/766/860 -> 1025/1075/1177; at 64 the panels win.)
inline constexpr size_t kInt8MaxTokens = 16;
inline constexpr size_t kInt8KQuantMaxTokens = 32;
inline constexpr size_t kQuantTileRows = 64;

// The most tokens quant_matmul multiplies with int8 activations for weights of `type` (0: the
// type has no int8 product, or the CPU no vector kernels: quant_matmul runs the fp32 paths).
size_t int8_max_tokens(GgmlType type);

// One [out][in] matrix of a product; parts of one product share `in` and x.
struct QuantPart {
  WeightView w;
  size_t out = 0;
};

// The parts of one product (wq|wk|wv, w1|w3, ...) as views: nothing is copied. Rows are
// numbered across the parts in order (part 0's rows, then part 1's, ...).
class QuantWeights {
 public:
  QuantWeights() = default;
  QuantWeights(std::span<const QuantPart> parts, size_t in);

  size_t in() const { return in_; }
  size_t num_parts() const { return parts_.size(); }
  const QuantPart& part(size_t i) const { return parts_[i]; }
  size_t total_out() const { return total_out_; }
  // Bytes of all parts' weights: what one pass over the product reads.
  size_t num_bytes() const;

 private:
  size_t in_ = 0;
  size_t total_out_ = 0;
  std::vector<QuantPart> parts_;
};

// For rows [row_begin, row_end) of w (numbered across parts): outs[part].y[t * ldy + o] =
// sum_k x[t * ldx + k] * W_part[o][k], t < n. Only those rows' outputs are written. A row's
// bits depend only on n, never on the range around it or the thread that computes it.
void quant_matmul(const QuantWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs, size_t row_begin,
                  size_t row_end);

// Splits w's rows into ranges of about `rows_per_range` (rounded up to whole tiles), each inside
// one part and starting on a tile boundary of it: the work items of a parallel product.
std::vector<std::pair<size_t, size_t>> quant_row_ranges(const QuantWeights& w, size_t rows_per_range);

// Scalar: each row dequantized by dequantize_row (model/dequantize.h), then dotted in double.
void quant_matmul_reference(const QuantWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs,
                            size_t row_begin, size_t row_end);

// The instruction set quant_matmul runs on this CPU: "avx512vnni", "avx512", "avx2" or "scalar".
const char* quant_kernel_isa();

}  // namespace prunekv
