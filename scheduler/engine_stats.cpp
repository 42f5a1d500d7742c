#include "scheduler/engine_stats.h"

#include <algorithm>

namespace prunekv {

void EngineStats::add(const StepStats& s) {
  if (num_steps == 0) first_step_time = s.time - s.duration;
  // Running mean over steps, so a long run never loses precision to a huge sum.
  mean_running += (double(s.num_running) - mean_running) / double(num_steps + 1);
  ++num_steps;
  num_prefill_tokens += s.num_prefill_tokens;
  num_decode_tokens += s.num_decode_tokens;
  peak_blocks_used = std::max({peak_blocks_used, s.peak_blocks_used, s.blocks_used});
  peak_running = std::max(peak_running, s.num_running);
  num_preemptions += s.num_preemptions;
  num_recomputed_tokens += s.num_recomputed_tokens;
  num_admissions_refused_for_blocks += s.num_admissions_refused_for_blocks;
  num_pruned += s.num_pruned;
  blocks_freed_by_pruning += s.blocks_freed_by_pruning;
  num_generated_prunes += s.num_generated_prunes;
  blocks_freed_by_generated_pruning += s.blocks_freed_by_generated_pruning;
  step_seconds += s.duration;
  forward_seconds += s.forward_duration;
  prune_seconds += s.prune_duration;
  last_step_time = s.time;
}

}  // namespace prunekv
