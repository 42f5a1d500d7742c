#include "scheduler/kv_admission.h"

#include <cmath>

#include "policies/pruning_policy.h"

namespace prunekv::detail {

AdmissionBudget::AdmissionBudget(const BlockPool& pool, const EngineConfig& config, const PruneForecast& forecast)
    : pool_(pool),
      forecast_(forecast),
      pruning_aware_(config.admission == AdmissionMode::kPruningAware),
      reserve_(static_cast<size_t>(std::ceil(config.admission_reserve_fraction * double(pool.num_total_blocks())))) {}

void AdmissionBudget::add_running(const Request& request, size_t num_scheduled) {
  const size_t computed_after_step = request.num_computed_tokens + num_scheduled;
  if (request.kv && computed_after_step < request.num_tokens())
    committed_ += request.kv->blocks_needed(request.num_tokens() - computed_after_step);
  if (pruning_aware_ && request.prunes() && !request.pruned) {
    const double kept = forecast_.predicted_kept_fraction(request.policy->name());
    const double prompt_blocks = double(footprint_blocks(pool_.layout(), request.num_prompt_tokens));
    credit_ += static_cast<size_t>(std::floor(prompt_blocks * (1.0 - kept)));
  }
}

bool AdmissionBudget::can_admit(const Request& request) const {
  const size_t footprint = footprint_blocks(pool_.layout(), request.num_tokens());
  size_t available = pool_.num_free_blocks();
  if (pruning_aware_ && credit_ > reserve_) available += credit_ - reserve_;
  return available >= committed_ && footprint <= available - committed_;
}

}  // namespace prunekv::detail
