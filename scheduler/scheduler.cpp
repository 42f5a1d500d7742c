#include "scheduler/scheduler.h"

#include <algorithm>

#include "common/check.h"
#include "policies/pruning_policy.h"
#include "scheduler/kv_admission.h"

namespace prunekv::detail {

Scheduler::Scheduler(BlockPool& pool, const EngineConfig& config, const PruneForecast& forecast,
                     uint32_t num_query_heads, PruneNow prune_now)
    : pool_(pool),
      config_(config),
      forecast_(forecast),
      num_query_heads_(num_query_heads),
      prune_now_(std::move(prune_now)) {}

void Scheduler::add_waiting(Request* request) {
  request->status = RequestStatus::kWaiting;
  waiting_.push_back(request);
}

void Scheduler::remove(Request* request) {
  if (request->status == RequestStatus::kRunning) {
    auto it = std::find(running_.begin(), running_.end(), request);
    PKV_CHECK(it != running_.end(), "request {} running but not in the running set", request->id);
    running_.erase(it);
  } else if (request->status == RequestStatus::kWaiting) {
    auto it = std::find(waiting_.begin(), waiting_.end(), request);
    PKV_CHECK(it != waiting_.end(), "request {} waiting but not in the waiting queue", request->id);
    waiting_.erase(it);
  }
  if (request->kv) {
    request->kv->free_all();
    request->kv.reset();
  }
  request->status = RequestStatus::kEnded;
}

void Scheduler::schedule(double now, StepPlan& plan) {
  plan.clear();
  for (Request* r : running_) r->num_scheduled_tokens = 0;
  size_t token_budget = config_.max_num_batched_tokens;
  schedule_running(plan, token_budget);
  // vLLM V1: a step that had to preempt admits nobody (the pool is evidently short).
  if (plan.preempted.empty()) admit_waiting(now, plan, token_budget);
}

bool Scheduler::allocate_chunk(Request& request, size_t num_tokens) {
  positions_.resize(num_tokens);
  for (size_t i = 0; i < num_tokens; ++i) positions_[i] = static_cast<Pos>(request.num_computed_tokens + i);
  return request.kv->append(positions_);
}

void Scheduler::preempt(Request& victim, StepPlan& plan) {
  auto it = std::find(running_.begin(), running_.end(), &victim);
  PKV_CHECK(it != running_.end(), "preempting request {} that is not running", victim.id);
  running_.erase(it);
  victim.kv->free_all();
  victim.kv.reset();
  // Recompute: the generated tokens stay in `tokens` and are computed again with the prompt.
  victim.num_computed_tokens = 0;
  victim.num_scheduled_tokens = 0;
  victim.pruned = false;
  victim.status = RequestStatus::kWaiting;
  ++victim.output.num_preemptions;
  // Victims leave latest-admitted first, so pushing each to the front keeps admission order.
  waiting_.push_front(&victim);
  plan.preempted.push_back(&victim);
}

bool Scheduler::prune_one(StepPlan& plan) {
  for (Request* r : running_) {
    if (!r->awaits_prune()) continue;
    if (!prune_now_(*r)) continue;
    plan.pruned_early.push_back(r);
    return true;
  }
  return false;
}

void Scheduler::add_chunk(Request& request, size_t num_tokens, StepPlan& plan) {
  request.num_scheduled_tokens = num_tokens;
  const bool sample = request.num_computed_tokens + num_tokens == request.num_tokens();
  plan.chunks.push_back({&request, num_tokens, sample});
  if (num_tokens == 1 && request.num_computed_tokens >= request.num_prompt_tokens) {
    ++plan.num_decode_tokens;
  } else {
    plan.num_prefill_tokens += num_tokens;
  }
}

void Scheduler::schedule_running(StepPlan& plan, size_t& token_budget) {
  size_t i = 0;
  while (i < running_.size() && token_budget > 0) {
    Request& r = *running_[i];
    const size_t n = std::min(r.max_next_chunk(), token_budget);
    PKV_CHECK(n > 0, "running request {} has nothing to compute", r.id);
    bool allocated = false;
    // Short of blocks: prune before preempt, then preempt from the back (latest admitted) until
    // the chunk fits or r itself was the victim. r is at index i and the victims come from the
    // back, so no request scheduled earlier in this step is ever preempted.
    while (!(allocated = allocate_chunk(r, n))) {
      if (prune_one(plan)) continue;
      Request* victim = running_.back();
      preempt(*victim, plan);
      if (victim == &r) break;
    }
    if (!allocated) break;  // r was the last running request
    add_chunk(r, n, plan);
    token_budget -= n;
    ++i;
  }
}

void Scheduler::admit_waiting(double now, StepPlan& plan, size_t& token_budget) {
  AdmissionBudget budget(pool_, config_, forecast_);
  for (const Request* r : running_) budget.add_running(*r, r->num_scheduled_tokens);
  const uint32_t group = num_query_heads_ / pool_.layout().num_kv_heads;
  while (!waiting_.empty() && token_budget > 0 && running_.size() < config_.max_num_seqs) {
    Request& w = *waiting_.front();
    if (w.ready_time > now) break;  // FCFS: later requests wait behind one not yet arrived
    if (!budget.can_admit(w)) {
      plan.admission_refused_for_blocks = true;
      break;
    }
    const size_t n = std::min(w.max_next_chunk(), token_budget);
    const StatMask stats = w.prunes() ? w.policy->needed_stats() : 0;  // what its policy will read
    w.kv.emplace(pool_, stats != 0 ? group : 0, stats);
    if (!allocate_chunk(w, n)) {
      w.kv.reset();
      plan.admission_refused_for_blocks = true;
      break;
    }
    waiting_.pop_front();
    running_.push_back(&w);
    w.status = RequestStatus::kRunning;
    w.admission_order = ++num_admissions_;
    add_chunk(w, n, plan);
    plan.admitted.push_back(&w);
    budget.add_running(w, n);
    token_budget -= n;
  }
}

}  // namespace prunekv::detail
