#pragma once
// Prunes requests whose prefill completed: policy->select on a read-only view, then
// apply_prune_plan frees the evicted blocks. Several requests run in parallel in the engine's
// task arena (each touches only its own SequenceKv; the pool's frees are thread-safe).
// Engine thread calls; nothing throws out of the parallel body.
#include <span>
#include <string>
#include <vector>

#include <tbb/task_arena.h>

#include "policies/pruning_policy.h"
#include "scheduler/request_state.h"

namespace prunekv::detail {

struct PruneResult {
  PruneOutcome outcome;
  std::string error;  // non-empty when the policy threw: the request fails (its KV is freed)
};

// Fills results[i] for requests[i] (results is resized). Requests must have a pruning policy
// and their prompt computed.
void prune_requests(std::span<Request* const> requests, uint32_t num_query_heads, tbb::task_arena& arena,
                    std::vector<PruneResult>& results);

}  // namespace prunekv::detail
