// `knorm:R` (Devoto et al. 2024, "A Simple and Effective L2 Norm-Based Strategy for KV Cache
// Compression"): keys with a low L2 norm draw high attention, so per (layer, KV head) keep the
// lowest-norm keys. Unlike the paper, the most recent kObservationWindow prompt tokens always
// stay, as in the other fixed-budget policies here: the next token's own context is never
// evicted on a norm heuristic. Reads the keys themselves, no attention statistics.
#include <cmath>
#include <fmt/format.h>

#include "common/check.h"
#include "policies/policy_factories.h"
#include "policies/selection.h"

namespace prunekv::detail {
namespace {

class KnormPolicy final : public PruningPolicy {
 public:
  explicit KnormPolicy(double keep_ratio) : keep_ratio_(keep_ratio) {}
  std::string name() const override { return fmt::format("knorm:{:g}", keep_ratio_); }
  bool needs_key_data() const override { return true; }

  PrunePlan select(const PruneView& view) const override {
    const SequenceKv& kv = view.kv;
    const KvLayout& layout = kv.layout();
    PKV_CHECK(kv.pool().has_storage() && layout.dtype == KvDtype::kF32,
              "knorm reads f32 keys; the pool holds {}", kv.pool().has_storage() ? to_string(layout.dtype) : "no data");
    PrunePlan plan;
    plan.block_rounded = false;
    const size_t budget = fixed_budget(keep_ratio_, view.prompt_len > 0 ? size_t(view.prompt_len) : 0);
    const size_t window = size_t{kObservationWindow};
    for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
      for (uint32_t kv_head = 0; kv_head < layout.num_kv_heads; ++kv_head) {
        const PromptSlots ps = prompt_slots(kv, layer, kv_head, view.prompt_len);
        if (ps.size() <= budget) continue;
        // Score = -||k||, so the top-k are the lowest norms.
        std::vector<double> scores(ps.size());
        for (size_t i = 0; i < ps.size(); ++i) {
          const float* key = kv.key(layer, kv_head, ps.slots[i]);
          double sq = 0.0;
          for (uint32_t d = 0; d < layout.head_dim; ++d) sq += double(key[d]) * double(key[d]);
          scores[i] = -std::sqrt(sq);
        }
        const size_t window_begin = ps.size() - window;
        std::vector<bool> keep(ps.size(), false);
        for (size_t i = window_begin; i < ps.size(); ++i) keep[i] = true;
        for (size_t i : top_k_indices(scores, 0, window_begin, budget - window)) keep[i] = true;
        add_head_keep(plan, kv, layer, kv_head, ps, keep);
      }
    }
    return plan;
  }

 private:
  double keep_ratio_;
};

}  // namespace

std::unique_ptr<PruningPolicy> make_knorm_policy(double keep_ratio) { return std::make_unique<KnormPolicy>(keep_ratio); }

}  // namespace prunekv::detail
