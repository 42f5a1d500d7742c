#include "scheduler/engine.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <tbb/task_arena.h>

#include "common/byte_size.h"
#include "common/check.h"
#include "common/error.h"
#include "common/log.h"
#include "model/ops.h"
#include "policies/pruning_policy.h"
#include "scheduler/kv_admission.h"
#include "scheduler/prune_forecast.h"
#include "scheduler/pruner.h"
#include "scheduler/request_queue.h"
#include "scheduler/scheduler.h"
#include "scheduler/stop_conditions.h"

namespace prunekv {

using detail::Request;
using detail::RequestStatus;

struct Engine::Impl {
  Impl(ModelRunner& runner, EngineConfig config);
  ~Impl();

  bool step();
  bool has_unfinished() const { return scheduler.num_waiting() + scheduler.num_running() > 0 || queue.has_pending(); }

  // Intake: tokenizes and checks a drained request; returns an error message when it cannot be
  // served, else queues it.
  void admit_to_queue(std::unique_ptr<Request> request, double now);
  std::string prepare(Request& request);
  const PruningPolicy* policy_for(const std::string& spec);
  void drain_intake(double now);
  void cancel(RequestId id, double now);

  void run_forward(detail::StepPlan& plan);
  void prune(std::span<Request* const> requests);
  void prune_generated(std::span<Request* const> requests);
  // Which of this step's chunks should record the window statistic for a prune of generated tokens.
  std::optional<StatsRequest> generated_stats_request(const Request& request, size_t num_tokens) const;
  bool prune_now(Request& request);
  void queue_end(Request& request, FinishReason reason);
  void record_prune(Request& request, const detail::PruneResult& result);
  void end(Request& request, FinishReason reason, double now, std::string error = {});
  void log_step() const;

  ModelRunner& runner;
  EngineConfig config;
  KvLayout layout;
  uint32_t num_query_heads;
  // Declared before everything that holds blocks, so it is destroyed last (its leak check).
  std::unique_ptr<BlockPool> pool;
  detail::PruneForecast forecast;
  tbb::task_arena arena;
  std::unordered_map<std::string, std::unique_ptr<PruningPolicy>> policies;
  detail::RequestQueue queue;
  std::unordered_map<RequestId, std::unique_ptr<Request>> live;  // drained and not ended
  std::vector<bool> drained_ids;                                 // [id]: seen by the engine
  std::unordered_set<RequestId> early_cancels;                   // cancelled before drained
  detail::Scheduler scheduler;

  EngineStats stats;
  StepStats last;
  StepTrace trace;
  uint64_t step_index = 0;
  std::shared_ptr<spdlog::logger> log = log::get("sched");

  // Per-step scratch, reused.
  detail::StepPlan plan;
  StepBatch batch;
  std::vector<Sampler*> samplers;
  std::vector<TokenId> next_tokens;
  std::vector<std::unique_ptr<Request>> drained;
  std::vector<RequestId> cancels;
  std::vector<Request*> to_prune;
  std::vector<Request*> to_prune_generated;
  std::vector<detail::PruneResult> prune_results;
  std::vector<std::pair<Request*, FinishReason>> to_end;
};

Engine::Impl::Impl(ModelRunner& r, EngineConfig c)
    : runner(r),
      config(std::move(c)),
      layout([&] {
        config.validate();
        KvLayout l = runner.kv_layout(config.block_size);
        l.block_size = config.block_size;
        l.dtype = config.kv_dtype;
        l.validate();
        return l;
      }()),
      num_query_heads(runner.num_query_heads()),
      pool(std::make_unique<BlockPool>(layout, config.resolve_num_blocks(layout), config.storage)),
      forecast(config.forecast_quantile, config.forecast_min_observations),
      arena(config.num_threads),
      scheduler(*pool, config, forecast, num_query_heads, [this](Request& req) { return prune_now(req); }) {
  if (num_query_heads == 0 || num_query_heads % layout.num_kv_heads != 0)
    throw ConfigError(fmt::format("model: {} query heads is not a multiple of {} KV heads", num_query_heads,
                                  layout.num_kv_heads));
  policy_for(config.default_policy);  // a bad default policy is a ConfigError now, not per request
  if (config.commit_kv_memory) arena.execute([&] { pool->commit_memory(); });
  const size_t blocks = pool->num_total_blocks();
  log->info("KV pool: {} blocks x {} tokens x {} bytes = {} ({} lists of {} layers x {} KV heads, {}, {} tokens "
            "per list at most)",
            blocks, layout.block_size, layout.bytes_per_block(), format_bytes(uint64_t(blocks) * layout.bytes_per_block()),
            layout.num_lists(), layout.num_layers, layout.num_kv_heads, to_string(layout.dtype),
            blocks / layout.num_lists() * layout.block_size);
  log->info("scheduler: max_num_seqs {}, max_num_batched_tokens {}, policy {}, admission {}", config.max_num_seqs,
            config.max_num_batched_tokens, config.default_policy, to_string(config.admission));
}

Engine::Impl::~Impl() {
  const double now = runner.now();
  drain_intake(now);
  std::vector<Request*> remaining;
  for (auto& [id, request] : live) remaining.push_back(request.get());
  std::sort(remaining.begin(), remaining.end(), [](auto* a, auto* b) { return a->id < b->id; });
  for (Request* request : remaining) end(*request, FinishReason::kCancelled, now);
}

const PruningPolicy* Engine::Impl::policy_for(const std::string& spec) {
  auto it = policies.find(spec);
  if (it != policies.end()) return it->second.get();
  std::unique_ptr<PruningPolicy> policy = config.policy_factory ? config.policy_factory(spec) : make_pruning_policy(spec);
  PKV_CHECK(policy != nullptr, "policy factory returned nothing for \"{}\"", spec);
  return policies.emplace(spec, std::move(policy)).first->second.get();
}

std::string Engine::Impl::prepare(Request& request) {
  const RequestSpec& spec = request.spec;
  if (!spec.prompt_tokens.empty()) {
    request.tokens = spec.prompt_tokens;
  } else if (spec.prompt.empty()) {
    return "empty prompt: expected prompt text or prompt_tokens";
  } else if (const Tokenizer* tokenizer = runner.tokenizer()) {
    // Stops at the context: a prompt that cannot fit is refused without tokenizing all of it.
    auto tokens = tokenizer->encode_at_most(spec.prompt, /*add_bos=*/true, runner.context_length(),
                                               spec.parse_special_tokens);
    if (!tokens)
      return fmt::format("prompt ({} bytes of text) has more tokens than the model context of {}", spec.prompt.size(),
                         runner.context_length());
    request.tokens = std::move(*tokens);
  } else {
    return "text prompt given but the model has no tokenizer: pass prompt_tokens or a tokenizer";
  }
  request.num_prompt_tokens = request.tokens.size();
  for (TokenId t : request.tokens)
    if (t < 0 || uint32_t(t) >= runner.vocab_size())
      return fmt::format("prompt token {} out of range: expected 0..{}", t, runner.vocab_size() - 1);
  if (spec.max_tokens == 0) return "max_tokens: expected >= 1, found 0";
  if (spec.forced_tokens.size() > spec.max_tokens)
    return fmt::format("forced_tokens: {} tokens, more than max_tokens ({})", spec.forced_tokens.size(), spec.max_tokens);
  for (TokenId t : spec.forced_tokens)
    if (t < 0 || uint32_t(t) >= runner.vocab_size())
      return fmt::format("forced token {} out of range: expected 0..{}", t, runner.vocab_size() - 1);
  if (spec.record_logprobs && !runner.computes_logits())
    return "record_logprobs: this runner computes no logits (a simulated model)";
  try {
    spec.sampling.validate();
  } catch (const Error& e) {
    return e.what();
  }
  // The last generated token is never fed back, so it needs no position or KV slot (as in
  // llama2.c, which runs prompt + max_tokens - 1 positions).
  const size_t positions = request.num_prompt_tokens + spec.max_tokens - 1;
  if (positions > runner.context_length())
    return fmt::format(
        "prompt ({} tokens) + max_tokens ({}) needs {} positions, more than the model context of {} tokens",
        request.num_prompt_tokens, spec.max_tokens, positions, runner.context_length());
  const size_t footprint = detail::footprint_blocks(layout, positions);
  if (footprint > pool->num_total_blocks())
    return fmt::format(
        "prompt ({} tokens) + max_tokens ({}) needs {} KV blocks ({} lists x {} blocks of {} tokens), but the whole "
        "pool holds {}: raise --kv-blocks / --kv-memory or lower max_tokens",
        request.num_prompt_tokens, spec.max_tokens, footprint, layout.num_lists(), layout.blocks_for_slots(positions),
        layout.block_size, pool->num_total_blocks());
  try {
    request.policy = policy_for(spec.policy.empty() ? config.default_policy : spec.policy);
  } catch (const Error& e) {
    return e.what();
  }
  if (request.policy->prunes() && request.policy->needs_key_data() && !pool->has_storage())
    return fmt::format("policy {} reads key vectors, which a count-only KV pool does not hold", request.policy->name());
  // Pruning during decode: the window is the last min(W, N) decode queries, so one prune's
  // window never overlaps the next one's and each query records for one prune at most.
  if (config.prune_every > 0 && request.policy->prunes() && request.policy->prunes_generated())
    request.generated_window = std::min(request.policy->stats_window(), static_cast<int32_t>(config.prune_every));
  request.sampler.emplace(spec.sampling);
  return {};
}

void Engine::Impl::admit_to_queue(std::unique_ptr<Request> owned, double now) {
  Request& request = *owned;
  const RequestId id = request.id;
  if (drained_ids.size() <= id) drained_ids.resize(std::max<size_t>(id + 1, drained_ids.size() * 2), false);
  drained_ids[id] = true;
  request.output.request_id = id;
  request.output.id = request.spec.id;
  // Submission time is taken here (the runner clock belongs to the engine thread): at most one
  // step late.
  request.output.arrival_time = request.spec.arrival_time > 0 ? request.spec.arrival_time : now;
  request.ready_time = request.spec.arrival_time;
  live.emplace(id, std::move(owned));
  std::string error;
  try {
    error = prepare(request);
  } catch (const std::exception& e) {  // a tokenizer or policy factory rejecting the input
    error = e.what();
  }
  request.output.num_prompt_tokens = request.num_prompt_tokens;
  if (!error.empty()) {
    end(request, FinishReason::kError, now, std::move(error));
  } else if (early_cancels.erase(id) != 0) {
    end(request, FinishReason::kCancelled, now);
  } else {
    scheduler.add_waiting(&request);
  }
}

void Engine::Impl::drain_intake(double now) {
  drained.clear();
  queue.drain(drained);
  // Producers race, so ids arrive slightly out of order; serve in id (submission) order.
  std::sort(drained.begin(), drained.end(), [](const auto& a, const auto& b) { return a->id < b->id; });
  for (auto& request : drained) admit_to_queue(std::move(request), now);
  cancels.clear();
  queue.drain_cancels(cancels);
  for (RequestId id : cancels) cancel(id, now);
}

void Engine::Impl::cancel(RequestId id, double now) {
  auto it = live.find(id);
  if (it != live.end()) {
    end(*it->second, FinishReason::kCancelled, now);
  } else if (id != kInvalidRequest && (id >= drained_ids.size() || !drained_ids[id])) {
    // Submitted (or about to be) but not drained yet: cancel it on arrival. Ids never issued
    // stay here harmlessly.
    early_cancels.insert(id);
  }
}

void Engine::Impl::end(Request& request, FinishReason reason, double now, std::string error) {
  RequestOutput& out = request.output;
  out.finish_reason = reason;
  out.error = std::move(error);
  out.finish_time = now;
  const size_t n = out.output_tokens.size();
  if (n > 0) out.ttft = out.first_token_time - out.arrival_time;
  if (n > 1) out.mean_tpot = (out.finish_time - out.first_token_time) / double(n - 1);
  scheduler.remove(&request);
  switch (reason) {
    case FinishReason::kStop:
    case FinishReason::kLength: ++stats.num_requests_finished; break;
    case FinishReason::kCancelled: ++stats.num_requests_cancelled; break;
    case FinishReason::kError:
      ++stats.num_requests_failed;
      log->debug("request {} ({}) failed: {}", request.id, out.id, out.error);
      break;
  }
  trace.ended.push_back(request.id);
  ++last.num_finished;
  if (request.on_output) request.on_output(out, true);
  live.erase(request.id);  // destroys the request
}

void Engine::Impl::record_prune(Request& request, const detail::PruneResult& result) {
  request.pruned = true;
  const PruneOutcome& o = result.outcome;
  request.output.kv_kept_fraction = o.kept_fraction();
  request.output.kv_kept_block_fraction = o.kept_block_fraction();
  request.output.blocks_freed_by_pruning = o.blocks_freed;
  request.output.num_prompt_blocks = o.prompt_blocks_before;
  forecast.observe(request.policy->name(), o.kept_block_fraction());
  if (request.generated_window > 0) request.next_generated_prune = request.num_prompt_tokens + config.prune_every;
  ++last.num_pruned;
  last.blocks_freed_by_pruning += o.blocks_freed;
  trace.pruned.push_back(request.id);
  log->debug("pruned request {}: kept {:.3f} of prompt entries, {:.3f} of prompt blocks, freed {} blocks", request.id,
             o.kept_fraction(), o.kept_block_fraction(), o.blocks_freed);
}

bool Engine::Impl::prune_now(Request& request) {
  Request* one[] = {&request};
  prune(one);
  return true;
}

void Engine::Impl::prune(std::span<Request* const> requests) {
  if (requests.empty()) return;
  detail::prune_requests(requests, num_query_heads, arena, prune_results);
  for (size_t i = 0; i < requests.size(); ++i) {
    Request& r = *requests[i];
    if (prune_results[i].error.empty()) {
      record_prune(r, prune_results[i]);
    } else {
      // Ended after the forward: prune_now runs while the scheduler walks its running set.
      r.pruned = true;
      r.failure = "pruning failed: " + prune_results[i].error;
      queue_end(r, FinishReason::kError);
    }
  }
}

void Engine::Impl::prune_generated(std::span<Request* const> requests) {
  if (requests.empty()) return;
  detail::prune_generated_requests(requests, num_query_heads, arena, prune_results);
  for (size_t i = 0; i < requests.size(); ++i) {
    Request& r = *requests[i];
    if (!prune_results[i].error.empty()) {
      r.failure = "pruning generated tokens failed: " + prune_results[i].error;
      queue_end(r, FinishReason::kError);
      continue;
    }
    const size_t freed = prune_results[i].outcome.blocks_freed;
    ++r.output.num_generated_prunes;
    r.output.blocks_freed_by_generated_pruning += freed;
    ++last.num_generated_prunes;
    last.blocks_freed_by_generated_pruning += freed;
    trace.pruned_generated.push_back(r.id);
    // The next prune whose whole window is still to be computed: after a recompute chunk that
    // passed several prune points, their windows are gone and the next full one counts.
    const size_t every = config.prune_every;
    size_t next = r.next_generated_prune + every;
    while (next - size_t(r.generated_window) < r.num_computed_tokens) next += every;
    r.next_generated_prune = next;
    log->debug("pruned the generated tokens of request {}: freed {} blocks, next at {} tokens", r.id, freed, next);
  }
}

std::optional<StatsRequest> Engine::Impl::generated_stats_request(const Request& r, size_t num_tokens) const {
  if (!r.prunes_generated()) return std::nullopt;
  // Record only the queries of positions [end - W, end): the window of the next prune.
  const size_t end = r.next_generated_prune;
  const size_t first = r.num_computed_tokens;
  if (first + num_tokens <= end - size_t(r.generated_window) || first >= end) return std::nullopt;
  return StatsRequest{static_cast<int32_t>(end), r.generated_window, r.policy->needed_stats()};
}

void Engine::Impl::queue_end(Request& request, FinishReason reason) {
  if (request.ending) return;
  request.ending = true;
  to_end.emplace_back(&request, reason);
}

void Engine::Impl::run_forward(detail::StepPlan& step_plan) {
  batch.clear();
  samplers.clear();
  for (const detail::ScheduledChunk& c : step_plan.chunks) {
    Request& r = *c.request;
    std::optional<StatsRequest> stats_request;
    if (r.kv->has_stats() && r.num_computed_tokens < r.num_prompt_tokens)
      stats_request = r.policy->stats_request(static_cast<int32_t>(r.num_prompt_tokens));
    else
      stats_request = generated_stats_request(r, c.num_tokens);
    const std::span<const TokenId> chunk(r.tokens.data() + r.num_computed_tokens, c.num_tokens);
    batch.add(&*r.kv, chunk, static_cast<Pos>(r.num_computed_tokens), c.sample, stats_request);
    if (c.sample) samplers.push_back(&*r.sampler);
    trace.chunks.emplace_back(r.id, c.num_tokens);
  }
  next_tokens.clear();
  runner.execute(batch, samplers, next_tokens);
  PKV_CHECK(next_tokens.size() == samplers.size(), "runner returned {} tokens for {} sampling sequences",
            next_tokens.size(), samplers.size());
}

bool Engine::Impl::step() {
  const double start = runner.now();
  last = StepStats{};
  trace.clear();
  to_end.clear();
  last.step = step_index++;
  drain_intake(start);

  // Nothing runs and the head of the queue arrives later: jump (simulator) or sleep to it.
  if (scheduler.num_running() == 0 && scheduler.num_waiting() > 0 && scheduler.waiting().front()->ready_time > start)
    runner.wait_until(scheduler.waiting().front()->ready_time);
  const double step_start = runner.now();

  scheduler.schedule(step_start, plan);
  for (Request* r : plan.preempted) trace.preempted.push_back(r->id);
  for (Request* r : plan.admitted) trace.admitted.push_back(r->id);
  last.num_preemptions = plan.preempted.size();
  last.num_admitted = plan.admitted.size();
  last.num_prefill_tokens = plan.num_prefill_tokens;
  last.num_decode_tokens = plan.num_decode_tokens;
  last.num_admissions_refused_for_blocks = plan.admission_refused_for_blocks ? 1 : 0;
  last.num_scheduled = plan.chunks.size();
  last.num_running = scheduler.num_running();
  last.num_waiting = scheduler.num_waiting();
  last.peak_blocks_used = pool->num_used_blocks();

  to_prune.clear();
  if (!plan.empty()) {
    const double forward_start = runner.now();
    run_forward(plan);
    const double now = runner.now();
    last.forward_duration = now - forward_start;
    const std::span<const TokenId> stop_tokens = runner.stop_tokens();
    size_t sampled = 0;
    for (const detail::ScheduledChunk& c : plan.chunks) {
      Request& r = *c.request;
      if (r.num_computed_tokens < r.max_computed_tokens)
        last.num_recomputed_tokens +=
            std::min(r.num_computed_tokens + c.num_tokens, r.max_computed_tokens) - r.num_computed_tokens;
      r.num_computed_tokens += c.num_tokens;
      r.max_computed_tokens = std::max(r.max_computed_tokens, r.num_computed_tokens);
      r.num_scheduled_tokens = 0;
      if (r.awaits_prune()) to_prune.push_back(&r);
      if (!c.sample) continue;
      const size_t step = r.output.output_tokens.size();
      if (r.spec.record_logprobs) {
        const std::span<const float> logits = runner.logits(sampled);
        r.output.logprobs.emplace_back(logits.size());
        log_softmax(logits.data(), r.output.logprobs.back().data(), logits.size());
      }
      const TokenId token = step < r.spec.forced_tokens.size() ? r.spec.forced_tokens[step] : next_tokens[sampled];
      ++sampled;
      if (r.output.output_tokens.empty()) r.output.first_token_time = now;
      std::optional<FinishReason> finish = detail::append_token(r, token, stop_tokens, runner.tokenizer());
      ++stats.num_output_tokens;
      if (finish) {
        queue_end(r, *finish);
      } else if (r.on_output) {
        r.on_output(r.output, false);
      }
    }
    // Prune in the step that completed the prefill, before the next admission, so the freed
    // blocks are there for it. Requests that just finished are pruned too (their kept fraction
    // is reported); their blocks go back right after.
    const double prune_start = runner.now();
    prune(to_prune);
    // Pruning during decode, in the same step, so admission sees the freed blocks. Requests that
    // end this step are left alone: their blocks go back right after anyway.
    to_prune_generated.clear();
    for (const detail::ScheduledChunk& c : plan.chunks) {
      Request& r = *c.request;
      if (r.prunes_generated() && !r.ending && r.num_computed_tokens >= r.next_generated_prune)
        to_prune_generated.push_back(&r);
    }
    prune_generated(to_prune_generated);
    last.prune_duration = runner.now() - prune_start;
    for (const detail::ScheduledChunk& c : plan.chunks)
      if (c.sample && c.request->spec.record_kv_blocks) c.request->output.kv_blocks_held.push_back(c.request->kv->num_blocks());
  }
  const double end_time = runner.now();
  for (auto& [request, reason] : to_end) {
    // A failed prune overrides a finish in the same step: its output is not trustworthy.
    if (!request->failure.empty()) {
      end(*request, FinishReason::kError, end_time, request->failure);
    } else {
      end(*request, reason, end_time);
    }
  }

  if (plan.empty() && trace.ended.empty() && trace.pruned.empty()) {
    // An idle poll (nothing queued or nothing that fits yet): not a step of the timeline.
    --step_index;
    return has_unfinished();
  }
  last.time = end_time;
  last.duration = end_time - start;
  last.blocks_used = pool->num_used_blocks();
  last.blocks_free = pool->num_free_blocks();
  stats.add(last);
  log_step();
  if (config.step_observer) config.step_observer(last);
  return has_unfinished();
}

void Engine::Impl::log_step() const {
  SPDLOG_LOGGER_DEBUG(log,
                      "step {}: {} prefill + {} decode tokens, {} running, {} waiting, +{} admitted, {} preempted, "
                      "{} pruned (-{} blocks), {} ended, blocks {} used / {} free",
                      last.step, last.num_prefill_tokens, last.num_decode_tokens, last.num_running, last.num_waiting,
                      last.num_admitted, last.num_preemptions, last.num_pruned, last.blocks_freed_by_pruning,
                      last.num_finished, last.blocks_used, last.blocks_free);
}

// ---- Engine: the public face ----

Engine::Engine(ModelRunner& runner, EngineConfig config) : impl_(std::make_unique<Impl>(runner, std::move(config))) {}
Engine::~Engine() = default;

RequestId Engine::submit(RequestSpec spec, OutputCallback on_output) {
  return impl_->queue.push(std::move(spec), std::move(on_output));
}

std::pair<RequestId, std::future<RequestOutput>> Engine::submit_future(RequestSpec spec) {
  auto promise = std::make_shared<std::promise<RequestOutput>>();
  std::future<RequestOutput> future = promise->get_future();
  const RequestId id = submit(std::move(spec), [promise](const RequestOutput& output, bool finished) {
    if (finished) promise->set_value(output);
  });
  return {id, std::move(future)};
}

void Engine::cancel(RequestId id) { impl_->queue.push_cancel(id); }

bool Engine::step() { return impl_->step(); }

void Engine::run_until_idle() {
  while (impl_->step()) {
  }
}

bool Engine::has_unfinished() const { return impl_->has_unfinished(); }
size_t Engine::num_waiting() const { return impl_->scheduler.num_waiting(); }
size_t Engine::num_running() const { return impl_->scheduler.num_running(); }
const EngineStats& Engine::stats() const { return impl_->stats; }
const StepStats& Engine::last_step() const { return impl_->last; }
const StepTrace& Engine::last_step_trace() const { return impl_->trace; }
const BlockPool& Engine::pool() const { return *impl_->pool; }
const EngineConfig& Engine::config() const { return impl_->config; }
ModelRunner& Engine::runner() const { return impl_->runner; }

}  // namespace prunekv
