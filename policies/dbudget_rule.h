#pragma once
// The stop rule of DBudgetKV / ReFreeKV (docs/method.md, steps 4-6) on plain arrays, so tests and
// benchmarks can check it against a brute-force evaluation of the paper's formula.
#include <cstddef>
#include <span>

namespace prunekv::detail {

// last_rows: [num_heads][n] softmax weights of the last prompt query of every query head of one
// layer over prompt positions 0..n-1. Candidates are positions num_sinks..n-1, evicted oldest
// first; returns the largest c (number of evicted candidates) with 1 - F(c)/F_full <= threshold,
// where F(c) = mean over heads of sqrt(sum of a^2 over the candidates left). At least the last
// position is kept, so c <= n - num_sinks - 1; with no candidate to spare it returns 0. When the
// candidates carry no attention at all (F_full = 0) evicting them loses nothing: the ratio
// counts as 0. One backward scan: O(num_heads * n).
size_t dbudget_evict_count(std::span<const float> last_rows, size_t num_heads, size_t n,
                           size_t num_sinks, double threshold);

}  // namespace prunekv::detail
