#pragma once
// The element-wise kernels of the LLaMA forward step (the weight GEMM is model/gemm.h): plain functions over caller
// buffers, no state, no threads (the Transformer partitions the work). Shapes in brackets.
#include <cstddef>

#include "common/ids.h"
#include "model/model_config.h"

namespace prunekv {

// a . b over n floats in 8 independent lanes, so the compiler vectorises it without -ffast-math;
// the summation order depends only on n, never on the thread or the caller.
inline float dot(const float* a, const float* b, size_t n) {
  constexpr size_t kLanes = 8;
  float lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) lanes[l] += a[i + l] * b[i + l];
  }
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (size_t l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

// out[i] = x[i] * weight[i] / sqrt(mean(x^2) + eps), one row of [dim]; out may alias x.
// llama2.c run.c rmsnorm(), its sum of squares by dot().
void rmsnorm(float* out, const float* x, const float* weight, size_t dim, float eps);

// cos/sin of the rotation angle pos * freq(k) for each of the head_dim/2 pairs k of one
// position, freq(k) = 1 / theta^(2k / head_dim): [head_dim/2] each. Shared by every head and
// layer of a token, so the step computes it once per token.
void rope_angles(float* cos_out, float* sin_out, Pos pos, size_t head_dim, float theta);

// Rotates num_heads consecutive heads of [head_dim] in place with angles from rope_angles().
// kAdjacentPairs rotates (x[2k], x[2k+1]) (llama2.c run.c); kHalfSplit rotates
// (x[k], x[k + head_dim/2]) (HF / NeoX).
void rope(float* vec, size_t num_heads, size_t head_dim, const float* cos, const float* sin,
          RopeLayout layout);

// gate[i] = silu(gate[i]) * up[i] over n values (the SwiGLU of llama2.c run.c).
void swiglu(float* gate, const float* up, size_t n);

// In-place softmax over n >= 1 values, max-subtracted.
void softmax(float* x, size_t n);

// out[i] = log softmax(x)[i] = x[i] - max - log(sum of exp(x[j] - max)) over n >= 1 values, the
// sum in double; x and out may be the same array.
void log_softmax(const float* x, float* out, size_t n);

// y[n][out] = x[n][in] * w[out][in]^T over rows [row_begin, row_end) of w (the columns
// [row_begin, row_end) of y, ldy = out), plain loops over the weights as stored: the reference
// the weight GEMM (model/gemm.h, which the forward step uses) is tested against.
void matmul_rows_reference(float* y, const float* x, const float* w, size_t n, size_t in, size_t out,
                           size_t row_begin, size_t row_end);

}  // namespace prunekv
