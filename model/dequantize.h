#pragma once
// The plain scalar dequantizers of the weight types prunekv computes with, written from the
// block layouts of the GGUF specification and ggml's block definitions. They are the reference
// every fused or vectorised kernel (model/quant_matmul.h) is tested against, and what the
// embedding lookup uses (one row per token).
//
// Block layouts (little-endian; "half" is IEEE binary16):
//   F32, F16, BF16  one value per element.
//   Q8_0  32 values in 34 bytes: half d, int8 q[32];               x[i] = d * q[i]
//   Q4_0  32 values in 18 bytes: half d, uint8 qs[16];             x[i] = d * (nibble - 8),
//         element i < 16 in the low nibble of qs[i], element 16 + i in its high nibble.
//   Q5_0  32 values in 22 bytes: half d, uint8 qh[4], uint8 qs[16]; x[i] = d * (q - 16), q 5 bits:
//         its low 4 as Q4_0's nibbles, its top bit bit i of qh (a little-endian uint32).
//   Q4_K  256 values in 144 bytes: half d, half dmin, uint8 scales[12], uint8 qs[128].
//         8 sub-blocks of 32, each with a 6-bit scale sc and a 6-bit min m packed in scales[]
//         (see q4_k_scale_min); x = (d * sc) * q - (dmin * m), q a 4-bit value. qs holds 4 chunks
//         of 32 bytes: chunk c's low nibbles are sub-block 2c, its high nibbles sub-block 2c + 1.
//   Q6_K  256 values in 210 bytes: uint8 ql[128], uint8 qh[64], int8 scales[16], half d.
//         16 sub-blocks of 16 values with an 8-bit signed scale; q is 6 bits (4 from ql, 2 from
//         qh) minus 32; x = (d * scale) * q. See dequantize_q6_k_block for the bit positions.
#include <cstddef>
#include <cstdint>

#include "model/ggml_type.h"

namespace prunekv {

inline constexpr size_t kQ8_0BlockBytes = 34, kQ4_0BlockBytes = 18, kQ5_0BlockBytes = 22, kQ4_KBlockBytes = 144, kQ6_KBlockBytes = 210;
inline constexpr size_t kQBlock = 32;    // elements of a Q8_0 / Q4_0 / Q5_0 block
inline constexpr size_t kKBlock = 256;   // elements of a K-quant super-block

// Whether the forward step computes with tensors of this type (F32, F16, BF16, Q8_0, Q4_0,
// Q5_0, Q4_K, Q6_K). Q5_0 is what llama-quantize's Q4_K_M falls back to for rows that are not
// whole 256-value blocks (stories15M's 288, stories42M's 1376).
bool is_supported_weight_type(GgmlType type);
// "F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K": for error messages.
const char* supported_weight_types();

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block's 12 packed bytes: sub-blocks
// 0-3 keep theirs in the low 6 bits of bytes j and j + 4; sub-blocks 4-7 take their low 4 bits
// from byte j + 4 (scale: low nibble, min: high nibble) and their top 2 bits from the spare top
// bits of bytes j - 4 (scale) and j (min).
inline void q4_k_scale_min(const uint8_t* scales, size_t j, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// One block of each quantized type into `out` (32 or 256 floats).
void dequantize_q8_0_block(const uint8_t* block, float* out);
void dequantize_q4_0_block(const uint8_t* block, float* out);
void dequantize_q5_0_block(const uint8_t* block, float* out);
void dequantize_q4_k_block(const uint8_t* block, float* out);
void dequantize_q6_k_block(const uint8_t* block, float* out);

// `n` elements of a row of a supported type, from its start (n a multiple of the block size).
void dequantize_row(GgmlType type, const uint8_t* row, float* out, size_t n);

}  // namespace prunekv
