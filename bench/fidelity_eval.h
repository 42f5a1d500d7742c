#pragma once
// The fidelity eval behind `prunekv eval`: every request runs greedily with the full cache, then
// with each policy twice: free-running (are the outputs identical?) and teacher-forced on the
// full cache's outputs (top-1 agreement and KL per step); each compared with the full cache's,
// request by request (bench/eval_report.h has the arithmetic and the reports).
#include <cstdint>
#include <string>
#include <vector>

#include "bench/eval_report.h"
#include "model/model.h"
#include "scheduler/engine_config.h"
#include "scheduler/jsonl.h"
#include "scheduler/request.h"
#include "scheduler/transformer_runner.h"

namespace prunekv::bench {

inline constexpr const char* kDefaultEvalPolicies =
    "full,topp,topp-blk,dbudget-l1,dbudget,dbudget:exact,streaming:0.7,h2o:0.9,snapkv:0.7,pyramidkv:0.7,knorm:0.7";

// One policy of the eval, with its sweep coordinates when it came from --sweep.
struct EvalPolicySpec {
  std::string spec;
  std::string family;  // empty unless swept
  double ratio = 0.0;
  uint32_t prune_every = 0;  // EngineConfig::prune_every of its runs
};

struct FidelityEvalOptions {
  EngineConfig engine;                // pool, limits, threads, admission
  std::vector<std::string> policies;  // each compared with the full cache
  // --sweep: fixed-budget families (NAME of a NAME:R policy) run at every ratio of sweep_ratios,
  // after `policies`.
  std::vector<std::string> sweep_families;
  std::vector<double> sweep_ratios;
  // --prune-every: each of `policies` that prunes generated tokens runs once per value (0 = after
  // the prefill only); the sweep runs at 0.
  std::vector<uint32_t> prune_every{0};
  std::string input;                  // JSONL requests (the golden file works as is)
  uint32_t max_tokens = 0;            // cap on every request's max_tokens; 0 = each line's own (or 256)
  ReadOptions read;                   // --strict, --max-line-bytes
};

inline constexpr double kDefaultSweepRatios[] = {0.5, 0.6, 0.7, 0.8, 0.9, 0.95};

// `policies` (each at every prune_every value it can run), then every family x ratio of the
// sweep as "family:ratio". Throws ConfigError for a
// family that is not a NAME:R policy or a ratio outside (0, 1].
std::vector<EvalPolicySpec> eval_policy_specs(const FidelityEvalOptions& options);

// Reads the requests, greedy, each with its own max_tokens (capped by options.max_tokens). A bad
// line is fatal here: a fidelity figure over a silently shortened set would mislead.
std::vector<RequestSpec> fidelity_eval_requests(const FidelityEvalOptions& options);

// The report's first line: build, threads, model, pool and requests.
std::string fidelity_eval_header(const FidelityEvalOptions& options, const Model& model,
                                 const TransformerRunner& runner, size_t num_requests);

// One result per policy, in order. A request whose full-cache run failed is left out of every
// policy (with a warning); one that failed under a policy is left out of that policy's.
std::vector<EvalPolicyResult> run_fidelity_eval(const FidelityEvalOptions& options, TransformerRunner& runner,
                                                const std::vector<RequestSpec>& specs);

}  // namespace prunekv::bench
