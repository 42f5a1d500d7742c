#pragma once
// `prunekv eval`'s arithmetic: how far a policy's greedy outputs agree with the full cache's,
// request by request, and the per-policy summary (the printed table and --output-json).
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scheduler/request.h"

namespace prunekv::bench {

struct EvalRequestResult {
  std::string id;
  bool exact = false;             // output tokens identical to the full cache's
  double prefix_fraction = 0.0;   // share of the full cache's output tokens before the first divergence
  double kv_kept_fraction = 1.0;  // token level (layer, KV head, prompt position entries)
  double kv_kept_block_fraction = 1.0;
  size_t blocks_freed = 0;
  size_t num_output_tokens = 0;  // of the policy's run
};

struct EvalPolicyResult {
  std::string policy;
  std::vector<EvalRequestResult> requests;

  size_t num_exact() const;
  double exact_agreement() const;  // num_exact / requests (0 when there are none)
  double mean_prefix_fraction() const;
  double mean_kv_kept_fraction() const;
  double mean_kv_kept_block_fraction() const;
  size_t blocks_freed() const;
  // Of the per-request token-level kept fractions; the median of an even count is the mean
  // of the two middle values.
  double kept_fraction_min() const;
  double kept_fraction_median() const;
  double kept_fraction_max() const;
};

// Compares one request's run under a policy with its full-cache run.
EvalRequestResult compare_with_full(const RequestOutput& full, const RequestOutput& pruned);

// {"policies": [{"policy", "num_requests", "num_exact", "exact_agreement", "mean_prefix_fraction",
//   "mean_kv_kept_fraction", "mean_kv_kept_block_fraction", "blocks_freed", "kept_fraction_min",
//   "kept_fraction_median", "kept_fraction_max", "requests": [{"id", "exact", "prefix_fraction",
//   "kv_kept_fraction", "kv_kept_block_fraction", "blocks_freed", "num_output_tokens"}]}]}
nlohmann::ordered_json eval_json(const std::vector<EvalPolicyResult>& results);
// A markdown table, one row per policy.
std::string eval_table(const std::vector<EvalPolicyResult>& results);

}  // namespace prunekv::bench
