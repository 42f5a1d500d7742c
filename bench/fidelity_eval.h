#pragma once
// The fidelity eval behind `prunekv eval`: every request runs greedily with the full cache, then
// with each policy; each policy's outputs are compared with the full cache's, request by request
// (bench/eval_report.h has the arithmetic and the reports).
#include <cstdint>
#include <string>
#include <vector>

#include "bench/eval_report.h"
#include "model/model.h"
#include "scheduler/engine_config.h"
#include "scheduler/request.h"
#include "scheduler/transformer_runner.h"

namespace prunekv::bench {

inline constexpr const char* kDefaultEvalPolicies =
    "full,dbudget,dbudget:exact,streaming:0.7,h2o:0.9,snapkv:0.7,pyramidkv:0.7,knorm:0.7";

struct FidelityEvalOptions {
  EngineConfig engine;                // pool, limits, threads, admission
  std::vector<std::string> policies;  // each compared with the full cache
  std::string input;                  // JSONL requests (the golden file works as is)
  uint32_t max_tokens = 0;            // cap on every request's max_tokens; 0 = each line's own (or 256)
};

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
