// `dbudget-l1`: the paper's contiguous oldest-first cut (DBudgetKV / ReFreeKV), stopped on the
// L1 attention mass the window queries lose instead of the L2 norm of the last query's row.
// Per layer (every layer, none frozen), blocks 1 .. b-1 go for the largest b whose evicted
// positions carry at most epsilon of every query head's window attention; block 0 (the sinks)
// and the window stay. Whole blocks, no data movement; positions are never renumbered.
#include <fmt/format.h>

#include <algorithm>

#include "common/check.h"
#include "policies/attention_mass_rules.h"
#include "policies/policy_factories.h"
#include "policies/selection.h"

namespace prunekv::detail {
namespace {

// epsilon * T_h for every head h: the L1 mass a cut may take from it.
std::vector<double> l1_allowances(std::span<const float> rows, size_t num_heads, size_t n, double epsilon) {
  std::vector<double> allowed(num_heads, 0.0);
  for (size_t h = 0; h < num_heads; ++h) {
    double total = 0.0;
    for (size_t j = 0; j < n; ++j) total += double(rows[h * n + j]);
    allowed[h] = epsilon * total;
  }
  return allowed;
}

}  // namespace

size_t l1_cut_end_block(std::span<const float> rows, size_t num_heads, size_t n, size_t block_size, size_t window,
                        double epsilon) {
  PKV_CHECK(rows.size() == num_heads * n, "{} attention weights for {} heads x {} positions", rows.size(), num_heads, n);
  PKV_CHECK(block_size > 0, "block size 0");
  if (n <= window) return 1;
  const size_t max_end = (n - window) / block_size;  // block_size * b <= n - window
  const std::vector<double> allowed = l1_allowances(rows, num_heads, n, epsilon);
  // The evicted mass only grows with b, so the answer is the last b before the first head
  // whose running sum passes its allowance.
  std::vector<double> evicted(num_heads, 0.0);
  size_t end = 1;
  for (size_t b = 2; b <= max_end; ++b) {
    for (size_t h = 0; h < num_heads; ++h) {
      for (size_t j = (b - 1) * block_size; j < b * block_size; ++j) evicted[h] += double(rows[h * n + j]);
      if (evicted[h] > allowed[h]) return end;
    }
    end = b;
  }
  return end;
}

size_t l1_cut_end_position(std::span<const float> rows, size_t num_heads, size_t n, size_t begin, size_t limit,
                           double epsilon) {
  PKV_CHECK(rows.size() == num_heads * n, "{} attention weights for {} heads x {} positions", rows.size(), num_heads, n);
  PKV_CHECK(begin <= limit && limit <= n, "candidates [{}, {}) outside {} positions", begin, limit, n);
  const std::vector<double> allowed = l1_allowances(rows, num_heads, n, epsilon);
  // As in l1_cut_end_block: the evicted mass only grows with the end.
  std::vector<double> evicted(num_heads, 0.0);
  for (size_t end = begin; end < limit; ++end) {
    for (size_t h = 0; h < num_heads; ++h) {
      evicted[h] += double(rows[h * n + end]);
      if (evicted[h] > allowed[h]) return end;
    }
  }
  return limit;
}

namespace {

class DBudgetL1Policy final : public PruningPolicy {
 public:
  explicit DBudgetL1Policy(double epsilon) : epsilon_(epsilon) {}

  std::string name() const override {
    return epsilon_ == kDBudgetL1Epsilon ? "dbudget-l1" : fmt::format("dbudget-l1:eps={:g}", epsilon_);
  }
  StatMask needed_stats() const override { return stat_bit(SlotStat::kWindowSum); }
  int32_t stats_window() const override { return kThresholdFreeWindow; }

  PrunePlan select(const PruneView& view) const override {
    check_stats_group(view);
    const KvLayout& layout = view.kv.layout();
    const size_t n = view.prompt_len > 0 ? size_t(view.prompt_len) : 0;
    const size_t window = std::min(size_t{kThresholdFreeWindow}, n);
    PrunePlan plan;
    plan.block_rounded = true;
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      const std::vector<float> rows = layer_stat_rows(view.kv, layer, n, SlotStat::kWindowSum);
      const size_t end = l1_cut_end_block(rows, view.num_query_heads, n, layout.block_size, window, epsilon_);
      if (end < 2) continue;
      plan.cuts.push_back({layer, static_cast<Pos>(layout.block_size), static_cast<Pos>(end * layout.block_size - 1)});
    }
    return plan;
  }

  bool prunes_generated() const override { return true; }
  // The same cut over the generated tokens: per layer, positions [prompt_len, c) for the largest
  // c <= window_first that leaves every query head all but epsilon of its window attention (the
  // prompt and the window count in T_h). Positions a previous cut removed read as zero; blocks
  // only partly inside the cut stay (drop_range).
  PrunePlan select_generated(const GeneratedPruneView& view) const override {
    check_stats_group(PruneView{view.kv, view.prompt_len, view.num_query_heads});
    const KvLayout& layout = view.kv.layout();
    const auto n = size_t(view.kv.positions(0, 0).empty() ? 0 : view.kv.positions(0, 0).back() + 1);
    PrunePlan plan;
    plan.block_rounded = true;
    if (n < size_t(view.window_first)) return plan;
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      const std::vector<float> rows = layer_stat_rows(view.kv, layer, n, SlotStat::kWindowSum);
      const size_t end = l1_cut_end_position(rows, view.num_query_heads, n, size_t(view.prompt_len),
                                             size_t(view.window_first), epsilon_);
      if (end > size_t(view.prompt_len))
        plan.cuts.push_back({layer, static_cast<Pos>(view.prompt_len), static_cast<Pos>(end - 1)});
    }
    return plan;
  }

 private:
  double epsilon_;
};

}  // namespace

std::unique_ptr<PruningPolicy> make_dbudget_l1_policy(double epsilon) {
  return std::make_unique<DBudgetL1Policy>(epsilon);
}

}  // namespace prunekv::detail
