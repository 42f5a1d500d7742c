#pragma once
// Prunes requests: after their prefill (policy->select on a read-only view, then
// apply_prune_plan frees the evicted blocks) and, with EngineConfig::prune_every, their
// generated tokens during decode (policy->select_generated). Several requests run in parallel in
// the engine's task arena (each touches only its own SequenceKv; the pool's frees are
// thread-safe). Engine thread calls; nothing throws out of the parallel body.
#include <span>
#include <string>
#include <vector>

#include <tbb/task_arena.h>

#include "policies/pruning_policy.h"
#include "scheduler/request_state.h"

namespace prunekv::detail {

struct PruneResult {
  PruneOutcome outcome;  // a prune of generated tokens fills blocks_freed only
  std::string error;     // non-empty when the policy threw: the request fails (its KV is freed)
};

// Fills results[i] for requests[i] (results is resized). Requests must have a pruning policy
// and their prompt computed. A request that will prune its generated tokens keeps its
// statistics, zeroed, for the decode queries to record into; the others release them.
void prune_requests(std::span<Request* const> requests, uint32_t num_query_heads, tbb::task_arena& arena,
                    std::vector<PruneResult>& results);

// The same for the generated tokens of requests whose prompt was pruned and whose decode
// queries [next_generated_prune - W, next_generated_prune) recorded the window statistic: the
// candidates are the generated positions before that window; the statistics are zeroed after.
void prune_generated_requests(std::span<Request* const> requests, uint32_t num_query_heads, tbb::task_arena& arena,
                              std::vector<PruneResult>& results);

}  // namespace prunekv::detail
