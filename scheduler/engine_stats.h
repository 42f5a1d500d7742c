#pragma once
// Counters of one engine step (StepStats) and of the whole run (EngineStats). Written by the
// engine thread only; read them there or after the engine is idle.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "scheduler/request.h"

namespace prunekv {

struct StepStats {
  uint64_t step = 0;                  // 0, 1, ...
  double time = 0.0;                  // runner clock at the end of the step, seconds
  double duration = 0.0;              // runner clock spent in this step, seconds
  size_t num_prefill_tokens = 0;      // prompt tokens computed (recomputed ones included)
  size_t num_decode_tokens = 0;       // decode tokens computed (one per decoding sequence)
  size_t num_running = 0;             // batch size: sequences holding KV after scheduling
  size_t num_scheduled = 0;           // sequences in the forward batch
  size_t num_waiting = 0;             // queue depth after scheduling
  size_t num_admitted = 0;            // newly admitted (or readmitted) this step
  size_t num_finished = 0;            // ended this step (stop, length, cancelled, error)
  size_t num_preemptions = 0;
  size_t num_recomputed_tokens = 0;   // tokens computed again after a preemption (in prefill tokens)
  // Whether admission stopped at a ready waiting request for want of KV blocks (not for
  // max_num_seqs or the token budget): 0 or 1.
  size_t num_admissions_refused_for_blocks = 0;
  size_t num_pruned = 0;              // requests pruned this step
  size_t blocks_freed_by_pruning = 0;
  // Pruning during decode (EngineConfig::prune_every): requests whose generated tokens were
  // pruned this step, and the blocks that freed (not in blocks_freed_by_pruning).
  size_t num_generated_prunes = 0;
  size_t blocks_freed_by_generated_pruning = 0;
  size_t blocks_used = 0;             // after the step (pruning and frees done)
  size_t blocks_free = 0;
  size_t peak_blocks_used = 0;        // within the step: after allocation, before pruning/frees
  // Where the step's duration went (runner clock): the forward pass with sampling, and pruning
  // (of prompts and, with prune_every, of generated tokens).
  // The rest is the engine's own work: intake, scheduling, block bookkeeping, outputs.
  double forward_duration = 0.0;
  double prune_duration = 0.0;
};

struct EngineStats {
  uint64_t num_steps = 0;
  size_t num_prefill_tokens = 0;   // recomputed tokens included
  size_t num_decode_tokens = 0;
  size_t num_output_tokens = 0;    // tokens delivered to requests
  size_t peak_blocks_used = 0;
  size_t peak_running = 0;
  double mean_running = 0.0;       // over steps
  size_t num_preemptions = 0;
  size_t num_recomputed_tokens = 0;
  size_t num_admissions_refused_for_blocks = 0;  // steps whose admission stopped for want of blocks
  size_t num_pruned = 0;
  size_t blocks_freed_by_pruning = 0;
  size_t num_generated_prunes = 0;
  size_t blocks_freed_by_generated_pruning = 0;
  size_t num_requests_finished = 0;   // stop or length
  size_t num_requests_cancelled = 0;
  size_t num_requests_failed = 0;
  double step_seconds = 0.0;       // sums of StepStats::duration, forward_duration and
  double forward_seconds = 0.0;    // prune_duration over the run
  double prune_seconds = 0.0;
  double first_step_time = 0.0;    // runner clock at the start of the first step
  double last_step_time = 0.0;     // runner clock at the end of the last step

  double elapsed() const { return last_step_time - first_step_time; }
  // Share of step time spent outside the forward pass and pruning: scheduling and bookkeeping.
  double bookkeeping_fraction() const {
    return step_seconds > 0 ? std::max(0.0, step_seconds - forward_seconds - prune_seconds) / step_seconds : 0.0;
  }
  // Folds one step into the totals.
  void add(const StepStats& step);
};

// Who did what in one step, by request id (scripted tests, debug logs).
struct StepTrace {
  std::vector<std::pair<RequestId, size_t>> chunks;  // (request, tokens computed), batch order
  std::vector<RequestId> admitted;
  std::vector<RequestId> preempted;  // in preemption order
  std::vector<RequestId> pruned;     // pruned this step (after prefill, or before a preemption)
  std::vector<RequestId> pruned_generated;  // generated tokens pruned this step (prune_every)
  std::vector<RequestId> ended;      // finished, cancelled or failed this step

  void clear() { chunks.clear(); admitted.clear(); preempted.clear(); pruned.clear(); pruned_generated.clear(); ended.clear(); }
};

// Called on the engine thread at the end of every step (timelines for bench / simulate).
using StepObserver = std::function<void(const StepStats&)>;

}  // namespace prunekv
