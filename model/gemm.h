#pragma once
// The weight GEMM of the forward step, y[n][out] = x[n][in] W^T, over weights repacked once at
// load into the panels a register-blocked micro-kernel wants.
//
// Layout: the columns of W^T (rows of the file's [out][in] W) in panels of kGemmPanel = 16,
// k-major: panel p holds W[16p + j][k] at data[p][k][j], j < 16, zero-padded past `out`. The
// kernel broadcasts x[t][k] and does one FMA per 8 weights, a tile of up to 6 tokens x 16 columns
// (x 2 panels where AVX-512VL gives 32 vector registers) in registers for the whole k loop.
//
// Summation order: every output element is the chain acc = fma(W[o][k], x[t][k], acc) over
// k = 0, 1, ..., in-1 from acc = 0, whatever the tile, the panel range, n or the thread. So a
// token's output is bit-identical computed alone or inside any batch, serial or parallel, and the
// scalar gemm_packed_reference() (std::fma in the same order) gives exactly the same bits.
//
// The panels hold floats, or halves (GemmHalfPart: F16 files) that the kernel widens as it loads
// them; widening is exact, so half panels give the bits of float panels of the widened weights.
//
// Several matrices with the same `in` can share one PackedWeights (wq|wk|wv, w1|w3): each part
// starts on a panel boundary and writes to its own output, so one call computes all of them.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/check.h"
#include "common/large_buffer.h"

namespace prunekv {

inline constexpr size_t kGemmPanel = 16;

// One [out][in] row-major matrix (y = W x) to pack.
struct GemmPart {
  const float* w = nullptr;
  size_t out = 0;
};

// The same of IEEE binary16 values (an F16 file's tensor): packed as halves, in the same panel
// layout, and widened to fp32 inside the micro-kernel (one vcvtph2ps per 8 weights). The results
// are those of the F32 path on the widened weights, bit for bit (widening is exact): the same
// contract, half the bytes, and no dequantized tile written and read back per product.
struct GemmHalfPart {
  const uint16_t* w = nullptr;
  size_t out = 0;
};

// Where a part's results go: y[t * ldy + o] for token t, output o.
struct GemmOut {
  float* y = nullptr;
  size_t ldy = 0;
};

class PackedWeights {
 public:
  PackedWeights() = default;
  // Copies every part into panels; parts.size() >= 1, all with the same `in`.
  PackedWeights(std::span<const GemmPart> parts, size_t in);
  // The same with the panels' elements halves (GemmHalfPart).
  PackedWeights(std::span<const GemmHalfPart> parts, size_t in);

  // Scratch panels for one part of up to `max_out` rows of `in` (or any in * max_out no larger),
  // refilled through fill(): where quantized products put their dequantized tiles
  // (model/quant_matmul.h).
  static PackedWeights scratch(size_t in, size_t max_out);
  // Makes the scratch one part of `out` rows of `in` (fits: CHECKed) and returns its panel data
  // for the caller to write in the layout above, zero padding included.
  float* fill(size_t out, size_t in);
  size_t capacity_floats() const { return capacity_floats_; }

  size_t in() const { return in_; }
  size_t num_parts() const { return part_out_.size(); }
  size_t part_out(size_t part) const { return part_out_[part]; }
  size_t num_panels() const { return panels_.size(); }
  // Sum of the parts' outputs (the un-padded columns).
  size_t total_out() const;
  // The multiply-adds of one token's product (in x total_out), for cost decisions.
  size_t macs_per_token() const { return in_ * total_out(); }

  // Panel p: which part, its first column in that part, how many of its 16 columns are real.
  struct Panel {
    uint32_t part;
    uint32_t col;
    uint32_t width;
  };
  const Panel& panel(size_t p) const { return panels_[p]; }
  // Whether the panels hold halves (built from GemmHalfPart) rather than floats.
  bool is_half() const { return half_; }
  // [in][16] floats, 64-byte aligned; only where !is_half() (DCHECKed).
  const float* panel_data(size_t p) const {
    PKV_DCHECK(!half_);
    return data_.get() + p * in_ * kGemmPanel;
  }
  // [in][16] halves, 32-byte aligned; only where is_half() (DCHECKed).
  const uint16_t* panel_half(size_t p) const {
    PKV_DCHECK(half_);
    return reinterpret_cast<const uint16_t*>(data_.get()) + p * in_ * kGemmPanel;
  }

 private:
  template <typename Part>
  void pack_panels(std::span<const Part> parts);
  void add_part(size_t out);  // appends a part's panels (metadata only)

  size_t in_ = 0;
  bool half_ = false;
  size_t capacity_floats_ = 0;
  std::vector<size_t> part_out_;
  std::vector<Panel> panels_;
  std::unique_ptr<float[], LargeFree> data_;  // allocate_large: huge pages
};

// For the panels [panel_begin, panel_end) of w: outs[part].y[t * ldy + o] =
// sum_k x[t * ldx + k] * W_part[o][k] for t < n, in the order described above. outs has
// w.num_parts() entries. Only the columns of those panels are written.
void gemm_packed(const PackedWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs,
                 size_t panel_begin, size_t panel_end);

// How many panels the kernel covers at once in an n-token call: splitting the panels of a
// product in multiples of it leaves no tile narrower than it could be.
size_t gemm_panel_group(size_t n);

// Scalar, same contract and the same bits (std::fma chains): what gemm_packed is tested against.
void gemm_packed_reference(const PackedWeights& w, const float* x, size_t ldx, size_t n, const GemmOut* outs,
                           size_t panel_begin, size_t panel_end);

}  // namespace prunekv
