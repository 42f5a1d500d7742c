#pragma once
// scheduler/: continuous batching over the model and the policies, the offline API and the
// JSONL request format. Uses common, memory, model and policies; the uses (sim, bench, cli) sit
// above it.
//
// The serving engine: continuous batching of many requests over one shared pool of KV blocks,
// with vLLM V1 scheduling (running requests first, preemption by recompute, chunked prefill in
// one token budget per step) and pruning right after each prefill, whose freed blocks admission
// counts on. This is the project's public C++ API.
//
// Threads: submit() and cancel() are safe from any number of threads (a lock-free multi-producer
// intake). Everything else — step(), run_until_idle(), stats(), pool() — belongs to one engine
// thread. Callbacks run on the engine thread inside step(); they must not call step().
//
//   prunekv::EngineConfig config;
//   config.kv_memory_bytes = 512ull << 20;
//   config.default_policy = "dbudget";
//   auto outputs = prunekv::generate(runner, config, std::move(specs));  // input order
#include <functional>
#include <future>
#include <memory>
#include <vector>

#include "memory/block_pool.h"
#include "scheduler/engine_config.h"
#include "scheduler/engine_stats.h"
#include "scheduler/model_runner.h"
#include "scheduler/request.h"

namespace prunekv {

class Engine {
 public:
  // Called on the engine thread after each new token (finished = false; output holds the tokens
  // and text so far) and exactly once when the request ends (finished = true: stop, length,
  // cancelled or error). The reference is valid during the call only.
  using OutputCallback = std::function<void(const RequestOutput& output, bool finished)>;

  // Validates `config` and sizes the pool from runner.kv_layout(); throws ConfigError. Logs the
  // KV size line at info level. The runner must outlive the engine.
  Engine(ModelRunner& runner, EngineConfig config);
  // Requests still queued or running end as cancelled (their callbacks run); every block is freed.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Any thread. Queues the request and returns its id at once; never throws for a bad request:
  // a prompt that cannot be served ends with FinishReason::kError and a message instead.
  RequestId submit(RequestSpec spec, OutputCallback on_output = {});
  // Any thread. The future is fulfilled when the request ends, whatever the reason.
  std::pair<RequestId, std::future<RequestOutput>> submit_future(RequestSpec spec);
  // Any thread. Ends the request as cancelled at the next step, whether queued or running; no
  // effect on a request that already ended or an unknown id.
  void cancel(RequestId id);

  // Engine thread. One step: drain intake and cancellations, schedule, forward + sample, stop
  // checks, prune requests whose prefill completed, free finished ones. Returns whether work
  // remains (requests waiting or running, or submissions not yet drained).
  bool step();
  // Engine thread. Steps until no request is waiting or running.
  void run_until_idle();
  bool has_unfinished() const;

  size_t num_waiting() const;
  size_t num_running() const;
  const EngineStats& stats() const;
  const StepStats& last_step() const;
  const StepTrace& last_step_trace() const;
  const BlockPool& pool() const;
  const EngineConfig& config() const;
  ModelRunner& runner() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Offline API: serves every spec on a fresh engine and returns the outputs in input order. Bad
// requests come back with FinishReason::kError; throws ConfigError for a bad config only.
// `stats`, when given, receives the engine's totals.
std::vector<RequestOutput> generate(ModelRunner& runner, const EngineConfig& config, std::vector<RequestSpec> specs,
                                    EngineStats* stats = nullptr);
// The same on an engine the caller built (benchmarks start their clocks after start-up).
std::vector<RequestOutput> generate(Engine& engine, std::vector<RequestSpec> specs);

}  // namespace prunekv
