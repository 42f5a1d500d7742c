#pragma once
// `prunekv eval`'s arithmetic: how far a policy's greedy outputs agree with the full cache's,
// request by request (free-running and teacher-forced), and the per-policy summary (the printed
// table, --output-json and the --plot frontier).
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/svg_plot.h"
#include "scheduler/request.h"

namespace prunekv::bench {

// Teacher forcing (the full cache's output tokens fed to the pruned cache), over `steps` steps:
// the share of steps whose argmax is the full cache's next token, and the mean over steps of
// KL(full || pruned) of the next-token distributions, in nats.
struct TeacherForcedFidelity {
  size_t steps = 0;
  double agreement = 1.0;
  double mean_kl = 0.0;
};

struct EvalRequestResult {
  std::string id;
  bool exact = false;             // output tokens identical to the full cache's
  double prefix_fraction = 0.0;   // share of the full cache's output tokens before the first divergence
  double kv_kept_fraction = 1.0;  // token level (layer, KV head, prompt position entries)
  double kv_kept_block_fraction = 1.0;
  size_t blocks_freed = 0;
  size_t num_output_tokens = 0;  // of the policy's run
  size_t num_prompt_blocks = 0;  // blocks holding prompt slots before pruning (0: not pruned)
  size_t generated_blocks_freed = 0;  // by pruning during decode (--prune-every)
  // Blocks the request held after producing each output token (free-running run).
  std::vector<size_t> kv_blocks_held;
  // Free-running greedy: the index of the first output token that differs from the full cache's
  // (a missing or extra token counts); none when exact.
  std::optional<size_t> first_divergence;
  TeacherForcedFidelity tf;
};

// Teacher-forced agreement and mean KL over the first full_tokens.size() steps, from the
// log-softmax rows of the full cache's run and of the pruned cache's teacher-forced run (rows
// beyond either's count are left out; no step at all: agreement 1, KL 0). Argmax ties go to the
// lowest token id, as greedy sampling does.
TeacherForcedFidelity teacher_forced_fidelity(const std::vector<std::vector<float>>& full_logprobs,
                                              std::span<const TokenId> full_tokens,
                                              const std::vector<std::vector<float>>& pruned_logprobs);

struct EvalPolicyResult {
  std::string policy;
  std::vector<EvalRequestResult> requests;
  // A fixed-budget family's sweep point ("snapkv" at ratio 0.7); empty family: a policy named
  // on its own.
  std::string family;
  double ratio = 0.0;
  uint32_t prune_every = 0;  // --prune-every of this run (0: pruned after the prefill only)

  size_t num_exact() const;
  double exact_agreement() const;  // num_exact / requests (0 when there are none)
  double mean_prefix_fraction() const;
  double mean_kv_kept_fraction() const;
  double mean_kv_kept_block_fraction() const;
  size_t blocks_freed() const;
  size_t generated_blocks_freed() const;
  // Mean over output-token index i of the blocks held by the requests that produced token i:
  // entry i is that mean (the footprint of a request over its generation).
  std::vector<double> mean_kv_blocks_held() const;
  // Blocks freed over prompt blocks, pooled over the requests (0 when nothing was pruned).
  double prompt_blocks_freed_fraction() const;
  double mean_tf_agreement() const;
  double mean_tf_kl() const;
  // Of the per-request token-level kept fractions; the median of an even count is the mean
  // of the two middle values.
  double kept_fraction_min() const;
  double kept_fraction_median() const;
  double kept_fraction_max() const;
};

// Compares one request's run under a policy with its full-cache run; the teacher-forced fields
// stay at their no-step values.
EvalRequestResult compare_with_full(const RequestOutput& full, const RequestOutput& pruned);
// Fills the teacher-forced fields from the full cache's run and the policy's teacher-forced run
// (both with logprobs recorded).
void add_teacher_forced(EvalRequestResult& result, const RequestOutput& full, const RequestOutput& forced);

// {"policies": [{"policy", "family" (null unless swept), "ratio" (null unless swept), "num_requests",
//   "num_exact", "exact_agreement", "mean_prefix_fraction", "mean_tf_agreement", "mean_tf_kl",
//   "mean_kv_kept_fraction", "mean_kv_kept_block_fraction", "blocks_freed",
//   "prompt_blocks_freed_fraction", "kept_fraction_min", "kept_fraction_median",
//   "kept_fraction_max", "prune_every", "generated_blocks_freed", "requests": [{"id", "exact",
//   "prefix_fraction", "first_divergence" (null when exact), "tf_steps", "tf_agreement",
//   "tf_mean_kl", "kv_kept_fraction", "kv_kept_block_fraction", "blocks_freed",
//   "num_prompt_blocks", "num_output_tokens", "generated_blocks_freed", "kv_blocks_held"}]}]}
nlohmann::ordered_json eval_json(const std::vector<EvalPolicyResult>& results);
// A markdown table, one row per policy.
std::string eval_table(const std::vector<EvalPolicyResult>& results);
// The fidelity frontier: exact agreement (top panel) and teacher-forced agreement (bottom) against
// the share of prompt blocks freed, one line per swept family (in ratio order), one point per
// policy named on its own.
std::vector<PlotPanel> frontier_plot_panels(const std::vector<EvalPolicyResult>& results);
// KV blocks held per request against output tokens generated (mean_kv_blocks_held), one line per
// policy run: what pruning during decode saves over a generation.
std::vector<PlotPanel> blocks_held_plot_panels(const std::vector<EvalPolicyResult>& results);

}  // namespace prunekv::bench
