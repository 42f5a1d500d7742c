#pragma once
// vLLM V1 scheduling over the shared pool (internal; engine thread only). schedule() serves
// running requests first, in admission order, each with its next chunk within one token budget
// per step; when a chunk or decode cannot allocate it prunes an unpruned finished prefill if
// there is one, else preempts the most recently admitted request (recompute: its KV freed, back
// to the front of the waiting queue). In a step without preemption it then admits waiting
// requests in order while max_num_seqs, the token budget and the blocks (AdmissionBudget) allow.
// Allocation happens here: a scheduled chunk's slots are appended to its KV before the forward.
#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

#include "memory/block_pool.h"
#include "scheduler/engine_config.h"
#include "scheduler/prune_forecast.h"
#include "scheduler/request_state.h"
#include "scheduler/step_plan.h"

namespace prunekv::detail {

class Scheduler {
 public:
  // Prunes one running request now (prune before preempt); returns whether it did.
  using PruneNow = std::function<bool(Request&)>;

  Scheduler(BlockPool& pool, const EngineConfig& config, const PruneForecast& forecast, uint32_t num_query_heads,
            PruneNow prune_now);

  // Queues a prepared request at the back of the waiting queue.
  void add_waiting(Request* request);
  // Takes a request out of the waiting queue or the running set and frees its KV (the one
  // release path: finish, cancel, error). O(waiting + running).
  void remove(Request* request);

  // Decides the step at runner time `now` (requests not ready before it are not admitted).
  void schedule(double now, StepPlan& plan);

  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  const std::deque<Request*>& waiting() const { return waiting_; }
  const std::vector<Request*>& running() const { return running_; }

 private:
  // Appends slots for the next n tokens of `request`; false when the pool is short.
  [[nodiscard]] bool allocate_chunk(Request& request, size_t num_tokens);
  void preempt(Request& victim, StepPlan& plan);
  // Prunes an unpruned, fully prefilled running request if any; returns whether one was.
  bool prune_one(StepPlan& plan);
  void schedule_running(StepPlan& plan, size_t& token_budget);
  void admit_waiting(double now, StepPlan& plan, size_t& token_budget);
  void add_chunk(Request& request, size_t num_tokens, StepPlan& plan);

  BlockPool& pool_;
  const EngineConfig& config_;
  const PruneForecast& forecast_;
  uint32_t num_query_heads_;
  PruneNow prune_now_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;  // admission order: the back is the preemption victim
  uint64_t num_admissions_ = 0;
  std::vector<Pos> positions_;     // scratch
};

}  // namespace prunekv::detail
