#include "model/quant_matmul.h"

#include <algorithm>

#include "common/check.h"
#include "model/dequantize.h"
#include "model/quant_int8.h"
#include "model/quant_kernels.h"

namespace prunekv {

namespace {

// The best kernel table this CPU runs, asked once; null: scalar only.
const detail::QuantKernels* cpu_kernels() {
  static const detail::QuantKernels* kernels = [] {
    const auto tables = detail::supported_quant_kernels();
    return tables.empty() ? nullptr : tables.back();
  }();
  return kernels;
}

// Calls fn(part, first_row_in_part, num_rows, offset_of_first_row_in_range) for every part
// overlapping rows [row_begin, row_end).
template <typename Fn>
void for_each_part_range(const QuantWeights& w, size_t row_begin, size_t row_end, const Fn& fn) {
  PKV_DCHECK(row_begin <= row_end && row_end <= w.total_out());
  size_t part_first = 0;
  for (size_t p = 0; p < w.num_parts() && part_first < row_end; ++p) {
    const size_t out = w.part(p).out;
    const size_t begin = std::max(row_begin, part_first), end = std::min(row_end, part_first + out);
    if (begin < end) fn(p, begin - part_first, end - begin);
    part_first += out;
  }
}

}  // namespace

size_t int8_max_tokens(GgmlType type) {
  const size_t block = int8_activation_block(type);
  if (block == 0 || cpu_kernels() == nullptr) return 0;
  return block == kKBlock ? kInt8KQuantMaxTokens : kInt8MaxTokens;
}

QuantWeights::QuantWeights(std::span<const QuantPart> parts, size_t in) : in_(in), parts_(parts.begin(), parts.end()) {
  PKV_CHECK(!parts.empty() && in > 0, "{} parts of in = {}", parts.size(), in);
  for (const QuantPart& part : parts_) {
    PKV_CHECK(part.w.data != nullptr && part.out > 0 && is_supported_weight_type(part.w.type), "part of type {}",
              ggml_type_name(part.w.type));
    PKV_CHECK(in % ggml_type_traits(part.w.type).block_elements == 0, "in = {} for {}", in,
              ggml_type_name(part.w.type));
    total_out_ += part.out;
  }
}

size_t QuantWeights::num_bytes() const {
  size_t bytes = 0;
  for (const QuantPart& part : parts_) bytes += part.out * ggml_row_bytes(part.w.type, in_);
  return bytes;
}

std::vector<std::pair<size_t, size_t>> quant_row_ranges(const QuantWeights& w, size_t rows_per_range) {
  const size_t step = std::max<size_t>(1, (rows_per_range + kQuantTileRows - 1) / kQuantTileRows) * kQuantTileRows;
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t part_first = 0;
  for (size_t p = 0; p < w.num_parts(); ++p) {
    const size_t out = w.part(p).out;
    for (size_t r = 0; r < out; r += step) ranges.emplace_back(part_first + r, part_first + std::min(out, r + step));
    part_first += out;
  }
  return ranges;
}

const char* quant_kernel_isa() {
  const detail::QuantKernels* kernels = cpu_kernels();
  return kernels ? kernels->isa : "scalar";
}

void quant_matmul_reference(const QuantWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs,
                            size_t row_begin, size_t row_end) {
  const size_t in = w.in();
  std::vector<float> row(in);
  for_each_part_range(w, row_begin, row_end, [&](size_t p, size_t first, size_t count) {
    const WeightView& view = w.part(p).w;
    for (size_t r = first; r < first + count; ++r) {
      dequantize_row(view.type, view.row(r, in), row.data(), in);
      for (size_t t = 0; t < n; ++t) {
        double sum = 0.0;
        for (size_t k = 0; k < in; ++k) sum += double{row[k]} * double{x[t * ldx + k]};
        outs[p].y[t * outs[p].ldy + r] = static_cast<float>(sum);
      }
    }
  });
}

void quant_matmul(const QuantWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs, size_t row_begin,
                  size_t row_end) {
  const detail::QuantKernels* kernels = cpu_kernels();
  if (kernels == nullptr) {
    quant_matmul_reference(w, x, ldx, n, outs, row_begin, row_end);
    return;
  }
  if (n == 0) return;
  const size_t in = w.in();
  size_t quantized_block = 0;  // the activation block x is quantized in, in this call; 0: none yet
  for_each_part_range(w, row_begin, row_end, [&](size_t p, size_t first, size_t count) {
    const WeightView& view = w.part(p).w;
    const size_t row_bytes = ggml_row_bytes(view.type, in);
    const GemmOut& out = outs[p];
    if (n <= int8_max_tokens(view.type)) {
      // x quantized once per call and activation block size (parts of one product share x):
      // a part of another block size after it quantizes again.
      thread_local Int8Activations xq;
      const size_t block = int8_activation_block(view.type);
      if (quantized_block != block) {
        xq.resize(block, in, n);
        kernels->quantize_activations(x, ldx, xq);
        quantized_block = block;
      }
      kernels->int8_dot_rows(view.type, view.row(first, in), row_bytes, count, xq, out.y + first, out.ldy);
      return;
    }
    if (n <= kFusedMaxTokens) {
      kernels->dot_rows(view.type, view.row(first, in), row_bytes, in, count, x, ldx, n, out.y + first, out.ldy);
      return;
    }
    // Tiles of rows dequantized to fp32 straight into the GEMM micro-kernel's panels
    // (model/gemm.h) and multiplied there. Tiles start at the part's multiples of
    // kQuantTileRows, wherever the range starts, so a row's tile never depends on the split.
    thread_local PackedWeights panels;
    if (panels.capacity_floats() < kQuantTileRows * in) panels = PackedWeights::scratch(in, kQuantTileRows);
    for (size_t r = first, next; r < first + count; r = next) {
      next = std::min(first + count, (r / kQuantTileRows + 1) * kQuantTileRows);
      const size_t rows = next - r;
      kernels->dequantize_panels(view.type, view.row(r, in), row_bytes, in, rows, panels.fill(rows, in));
      const GemmOut tile_out{out.y + r, out.ldy};
      gemm_packed(panels, x, ldx, n, &tile_out, 0, panels.num_panels());
    }
  });
}

}  // namespace prunekv
