#pragma once
// Test-side writers of the weight types (what llama.cpp's converter and llama-quantize produce,
// written here from the block layouts so CI needs no llama.cpp): fp32 values in, a tensor's
// bytes out, row after row.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "model/ggml_type.h"

namespace prunekv::testing {

// F32 (copied), F16 and BF16 (round to nearest even), Q8_0 (d = max|x| / 127, q = round(x / d)),
// Q4_0 (d = the signed value of largest magnitude / -8, q = clamp(round(x / d) + 8, 0, 15)).
// values.size() a multiple of the block size.
std::vector<uint8_t> quantize(GgmlType type, std::span<const float> values);

// `num_blocks` blocks of a quantized type with random bytes and random finite scales in
// [-0.05, 0.05] (every 7th block a zero or subnormal scale): what a kernel must decode, without
// needing a quantizer for the type.
std::vector<uint8_t> random_blocks(GgmlType type, size_t num_blocks, uint64_t seed);

// Whether `type` can store rows of `cols` elements (the row is whole blocks).
bool fits_rows(GgmlType type, size_t cols);

uint16_t float_to_half(float f);  // round to nearest even
uint16_t float_to_bf16(float f);  // round to nearest even (NaN stays NaN)

}  // namespace prunekv::testing
