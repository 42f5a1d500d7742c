#pragma once
// The constructors of the individual policies, for the registry (policy_registry.cpp) and the
// tests. Each lives in its own .cpp; parameters are validated by the registry before these run.
#include <memory>

#include "policies/pruning_policy.h"

namespace prunekv::detail {

struct DBudgetParams {
  double threshold = 0.01;  // T: the largest tolerated relative drop of the Uni-Metric
  bool exact = false;       // token-exact cut through compaction instead of whole blocks
};

std::unique_ptr<PruningPolicy> make_full_policy();
std::unique_ptr<PruningPolicy> make_dbudget_policy(const DBudgetParams& params);
// `keep_ratio` R in (0, 1]: the kept fraction of prompt tokens.
std::unique_ptr<PruningPolicy> make_streaming_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_h2o_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_snapkv_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_pyramidkv_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_knorm_policy(double keep_ratio);

}  // namespace prunekv::detail
