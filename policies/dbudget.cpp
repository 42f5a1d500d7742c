// `dbudget`: the threshold-free DBudgetKV / ReFreeKV rule exactly as docs/method.md states it.
// Per layer from layer 2 up: keep the 4 sinks, evict the oldest candidates while the Uni-Metric
// over the last prompt query's attention rows (every query head of the layer) drops by at most
// T, keep the rest. The evicted positions form one interval per layer, shared by its KV heads.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/check.h"
#include "policies/dbudget_rule.h"
#include "policies/policy_factories.h"
#include "policies/selection.h"

namespace prunekv {
namespace detail {

size_t dbudget_evict_count(std::span<const float> last_rows, size_t num_heads, size_t n,
                           size_t num_sinks, double threshold) {
  PKV_CHECK(last_rows.size() == num_heads * n, "{} attention weights for {} heads x {} positions",
            last_rows.size(), num_heads, n);
  if (num_heads == 0 || n <= num_sinks + 1) return 0;  // no candidate besides the last token
  const size_t num_candidates = n - num_sinks;
  auto weight = [&](size_t head, size_t pos) { return double(last_rows[head * n + pos]); };

  // E_h, summed newest first: the scan below adds the same terms in the same order, so R_h(c)
  // equals E_h bit for bit when the evicted candidates carry no attention (T = 0 stays exact).
  std::vector<double> full(num_heads, 0.0);
  double norm_full = 0.0;  // sum over heads of sqrt(E_h); the mean's 1/H cancels in the ratio
  for (size_t h = 0; h < num_heads; ++h) {
    for (size_t pos = n; pos-- > num_sinks;) full[h] += weight(h, pos) * weight(h, pos);
    norm_full += std::sqrt(full[h]);
  }
  if (norm_full == 0.0) return num_candidates - 1;  // nothing to lose: keep only the last token

  // The ratio 1 - F(c)/F_full never decreases with c, so the first c (from the largest) that
  // satisfies the rule is the answer. R_h(c) = sum of a_h[j]^2 over j >= num_sinks + c; c starts
  // at num_candidates - 1 because the last token always stays.
  std::vector<double> rest(num_heads, 0.0);
  for (size_t c = num_candidates; c-- > 0;) {
    const size_t pos = num_sinks + c;
    double norm = 0.0;
    for (size_t h = 0; h < num_heads; ++h) {
      rest[h] += weight(h, pos) * weight(h, pos);
      norm += std::sqrt(rest[h]);
    }
    if (1.0 - norm / norm_full <= threshold) return c;
  }
  return 0;
}

namespace {

class DBudgetPolicy final : public PruningPolicy {
 public:
  explicit DBudgetPolicy(const DBudgetParams& params) : params_(params) {}

  std::string name() const override {
    std::string spec = "dbudget";
    if (params_.threshold != DBudgetParams{}.threshold) spec += fmt::format(":T={:g}", params_.threshold);
    if (params_.exact) spec += ":exact";
    return spec;
  }
  // The last prompt query's attention row only.
  StatMask needed_stats() const override { return stat_bit(SlotStat::kLastRow); }

  PrunePlan select(const PruneView& view) const override {
    const SequenceKv& kv = view.kv;
    const KvLayout& layout = kv.layout();
    PKV_CHECK(kv.stats_carried() & stat_bit(SlotStat::kLastRow),
              "dbudget reads the last-row attention but the sequence records none");
    check_stats_group(view);
    const size_t n = view.prompt_len > 0 ? size_t(view.prompt_len) : 0;
    const size_t num_heads = view.num_query_heads;

    PrunePlan plan;
    plan.block_rounded = !params_.exact;
    for (uint32_t layer = kNumUnprunedLayers; layer < layout.num_layers; ++layer) {
      // rows[h][pos] = a_h[pos]; a position missing from a list reads as zero attention.
      const std::vector<float> rows = layer_stat_rows(kv, layer, n, SlotStat::kLastRow);
      const size_t evict = dbudget_evict_count(rows, num_heads, n, kNumSinkTokens, params_.threshold);
      if (evict == 0) continue;
      plan.cuts.push_back({layer, kNumSinkTokens, static_cast<Pos>(kNumSinkTokens + evict - 1)});
    }
    return plan;
  }

 private:
  // method.md step 2: the F = 2 bottom layers are never pruned.
  static constexpr uint32_t kNumUnprunedLayers = 2;
  DBudgetParams params_;
};

}  // namespace

std::unique_ptr<PruningPolicy> make_dbudget_policy(const DBudgetParams& params) {
  return std::make_unique<DBudgetPolicy>(params);
}

}  // namespace detail
}  // namespace prunekv
