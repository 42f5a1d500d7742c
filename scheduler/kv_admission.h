#pragma once
// Block accounting for admission (engine thread only). The rule, per waiting request w:
//
//   footprint(w)  = blocks its whole prefill needs (every (layer, KV head) list, all its tokens)
//   committed     = blocks running requests still need to finish their prefills (later chunks)
//   credit        = blocks running, not yet pruned requests are forecast to release when they
//                   are pruned: prompt blocks x (1 - predicted kept block fraction)
//   naive:          admit iff footprint(w) <= free - committed
//   pruning-aware:  admit iff footprint(w) <= free - committed + max(0, credit - reserve)
//
// and in both modes w's first chunk must be allocatable now. Why it admits more: a prefill
// holds its full footprint only until it is pruned at the end of the step that completes it.
// Running prefills are served before new ones (running first, in admission order), so their
// prunes land before w's later chunks are allocated, and the credit turns into free blocks in
// time. Requests admitted in the same step add their own credit for the ones behind them.
// A forecast that is too optimistic shows up as a later chunk or decode that cannot allocate:
// the scheduler then preempts (recompute), never deadlocks; each prune corrects the forecast.
#include <cstddef>

#include "memory/block_pool.h"
#include "scheduler/engine_config.h"
#include "scheduler/prune_forecast.h"
#include "scheduler/request_state.h"

namespace prunekv::detail {

// Blocks a fresh sequence needs to hold `num_tokens` tokens in every list.
inline size_t footprint_blocks(const KvLayout& layout, size_t num_tokens) {
  return layout.num_lists() * layout.blocks_for_slots(num_tokens);
}

class AdmissionBudget {
 public:
  AdmissionBudget(const BlockPool& pool, const EngineConfig& config, const PruneForecast& forecast);

  // Accounts a running (or just admitted) request that computes `num_scheduled` tokens this
  // step, whose slots are already appended to its KV.
  void add_running(const Request& request, size_t num_scheduled);
  // Whether `request`'s whole prefill footprint fits (see the rule above). No side effects.
  bool can_admit(const Request& request) const;

  size_t committed_blocks() const { return committed_; }
  size_t credit_blocks() const { return credit_; }
  size_t reserve_blocks() const { return reserve_; }

 private:
  const BlockPool& pool_;
  const PruneForecast& forecast_;
  bool pruning_aware_;
  size_t reserve_;
  size_t committed_ = 0;
  size_t credit_ = 0;
};

}  // namespace prunekv::detail
