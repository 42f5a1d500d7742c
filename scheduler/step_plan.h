#pragma once
// What one step decided (internal): which requests compute how many tokens (their slots are
// already allocated), who was preempted, admitted or pruned early. Produced by
// Scheduler::schedule(), consumed by the engine loop.
#include <cstddef>
#include <vector>

#include "scheduler/request_state.h"

namespace prunekv::detail {

struct ScheduledChunk {
  Request* request = nullptr;
  size_t num_tokens = 0;  // tokens [num_computed_tokens, num_computed_tokens + num_tokens)
  bool sample = false;    // the chunk ends at the last token: sample the next one
};

struct StepPlan {
  std::vector<ScheduledChunk> chunks;  // running requests first (admission order), then admitted
  std::vector<Request*> preempted;     // in preemption order; now at the front of the waiting queue
  std::vector<Request*> admitted;
  std::vector<Request*> pruned_early;  // pruned before preempting (already recorded)
  size_t num_prefill_tokens = 0;       // chunks that do not sample, or sample after > 1 token
  size_t num_decode_tokens = 0;        // single-token chunks of requests past their prompt
  bool admission_refused_for_blocks = false;  // a ready waiting request did not fit the pool

  bool empty() const { return chunks.empty(); }
  void clear() {
    chunks.clear();
    preempted.clear();
    admitted.clear();
    pruned_early.clear();
    num_prefill_tokens = num_decode_tokens = 0;
    admission_refused_for_blocks = false;
  }
};

}  // namespace prunekv::detail
