// The quantized kernels for AVX-512 F/BW/VL/DQ with VNNI (vpdpbusd: the int8-activation
// products' byte dot products in one instruction), otherwise those of quant_kernels_avx512.cpp;
// built with a target attribute so the library runs on CPUs without them.
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which it reports as uninitialized
// when they are inlined under a target pragma rather than -march (GCC bug 105593): the whole
// file ignores those two warnings.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "model/dequantize.h"
#include "model/half.h"
#include "model/quant_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")

namespace prunekv::detail {
namespace {

#include "model/quant_simd_avx512.h"

#define PKV_DOT_BYTES_VNNI 1
#include "model/quant_kernels_simd.h"

}  // namespace

const QuantKernels* quant_kernels_avx512vnni() {
  static const QuantKernels kernels{"avx512vnni", dot_rows, dequantize_rows, dequantize_panels,
                                    quantize_activations, int8_dot_rows};
  return &kernels;
}

}  // namespace prunekv::detail

#pragma GCC pop_options
