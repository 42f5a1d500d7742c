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

// The threshold-free top-p rules: epsilon = the share of every query head's window attention a
// list may lose. The defaults are the largest values on the grid {0.0003, 0.001, 0.002, 0.003,
// 0.005, 0.01, 0.02, 0.03, 0.05, 0.1} that kept at least 58 of the 60 golden stories260K
// outputs exact (issue 19); they are constants, the same for every input and model.
inline constexpr double kTopPEpsilon = 0.001;       // topp
inline constexpr double kTopPBlockEpsilon = 0.003;  // topp-blk
inline constexpr double kDBudgetL1Epsilon = 0.01;   // dbudget-l1
// Their observation window: the last min(32, n) prompt queries (SlotStat::kWindowSum).
inline constexpr int32_t kThresholdFreeWindow = 32;

std::unique_ptr<PruningPolicy> make_full_policy();
std::unique_ptr<PruningPolicy> make_dbudget_policy(const DBudgetParams& params);
// `keep_ratio` R in (0, 1]: the kept fraction of prompt tokens.
std::unique_ptr<PruningPolicy> make_streaming_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_h2o_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_snapkv_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_pyramidkv_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_knorm_policy(double keep_ratio);
std::unique_ptr<PruningPolicy> make_topp_policy(double epsilon);
std::unique_ptr<PruningPolicy> make_topp_block_policy(double epsilon);
std::unique_ptr<PruningPolicy> make_dbudget_l1_policy(double epsilon);

}  // namespace prunekv::detail
