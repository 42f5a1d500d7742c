#pragma once
// The stop rules of the threshold-free policies `topp`, `topp-blk` and `dbudget-l1` on plain
// arrays, so tests can check them on hand-made attention. Both bound the L1 attention mass an
// eviction takes away, relative to the whole: for a query whose softmax row loses mass m,
// ||o - o'|| <= 2 m max||v||, which is why they stop on L1 mass rather than DBudgetKV's L2 norm
// (a diffuse tail of small weights carries little L2 norm but real L1 mass). Sums in double.
#include <cstddef>
#include <span>
#include <vector>

namespace prunekv::detail {

// Top-p over units (tokens or blocks) of one (layer, KV head) list. masses: [num_units][group],
// the attention mass each of the group's query heads pays to each unit (>= 0); T_g = the sum of
// column g. Units with forced[u] stay; the others are ranked by max over g of masses[u][g] / T_g
// (a head with T_g = 0 adds 0), highest first, ties to the lower index, and added until every g
// keeps at least (1 - epsilon) T_g. Returns the keep flag of every unit.
std::vector<bool> top_p_keep(std::span<const double> masses, size_t group, const std::vector<bool>& forced,
                             double epsilon);

// The L1 cut of `dbudget-l1` for one layer. rows: [num_heads][n], the attention mass each query
// head pays to prompt position j; T_h = the sum of row h. Returns the largest b >= 1 with
// block_size * b <= n - window and, for every head, sum over j in [block_size, block_size * b) of
// rows[h][j] <= epsilon * T_h: evicting blocks 1 .. b-1 (positions [block_size, block_size * b))
// keeps block 0 (the sinks), the window and every head's lost mass within epsilon.
size_t l1_cut_end_block(std::span<const float> rows, size_t num_heads, size_t n, size_t block_size, size_t window,
                        double epsilon);

// The L1 cut of `dbudget-l1` over generated tokens (pruning during decode). rows as above over
// positions [0, n). Returns the largest c in [begin, limit] with, for every head, the sum over
// j in [begin, c) of rows[h][j] <= epsilon * T_h: evicting positions [begin, c) oldest first.
size_t l1_cut_end_position(std::span<const float> rows, size_t num_heads, size_t n, size_t begin, size_t limit,
                           double epsilon);

}  // namespace prunekv::detail
