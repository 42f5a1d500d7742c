#pragma once
// prunekv::detail: the vectorised kernels behind model/quant_matmul.h, one table per instruction
// set, compiled with target attributes (not -march) so one binary carries all of them; the
// caller picks a table at run time from what the CPU reports (__builtin_cpu_supports).
//
// Both kernels decode a row 32 elements at a time into the same fp32 values the scalar
// dequantizers give (model/dequantize.h: the same products and differences, in the same order),
// so dequantize_rows and dequantize_panels are bit-identical to dequantize_row and dot_rows differs from
// dequantize-then-dot only in its summation order.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/ggml_type.h"
#include "model/quant_int8.h"

namespace prunekv::detail {

struct QuantKernels {
  const char* isa;
  // y[t * ldy + r] = sum_k W[r][k] * x[t * ldx + k] for r < rows, t < n; W's rows start at
  // w + r * row_bytes, `cols` elements each of `type`.
  void (*dot_rows)(GgmlType type, const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, const float* x,
                   size_t ldx, size_t n, float* y, size_t ldy);
  // out[r * cols + k] = W[r][k] for r < rows.
  void (*dequantize_rows)(GgmlType type, const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, float* out);
  // The same values in the F32 GEMM's panel layout (model/gemm.h): ceil(rows / 16) panels of
  // [cols][16] floats, zero past `rows`; out 64-byte aligned.
  void (*dequantize_panels)(GgmlType type, const uint8_t* w, size_t row_bytes, size_t cols, size_t rows, float* out);
  // The int8-activation product (model/quant_int8.h): x's a.n rows into a (sized by
  // a.resize), the same bytes as quantize_activations_reference.
  void (*quantize_activations)(const float* x, size_t ldx, Int8Activations& a);
  // y[t * ldy + r] = W[r] . token t of a, for r < rows, t < a.n; W's rows a.cols elements of
  // `type` (one with an int8 product), starting at w + r * row_bytes.
  void (*int8_dot_rows)(GgmlType type, const uint8_t* w, size_t row_bytes, size_t rows, const Int8Activations& a,
                        float* y, size_t ldy);
};

// The tables; call their kernels only where the CPU has the instructions (AVX2 + FMA + F16C;
// AVX-512 F/BW/VL/DQ; those and AVX-512 VNNI).
const QuantKernels* quant_kernels_avx2();
const QuantKernels* quant_kernels_avx512();
const QuantKernels* quant_kernels_avx512vnni();

// The tables this CPU runs (asked through __builtin_cpu_supports), best last; empty where it
// has no AVX2 (quant_matmul then runs the scalar reference).
std::vector<const QuantKernels*> supported_quant_kernels();

}  // namespace prunekv::detail
