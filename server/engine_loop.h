#pragma once
// The serving engine on a thread of its own: HTTP threads submit and cancel from anywhere
// (Engine's lock-free intake), the loop steps while there is work and sleeps when there is none,
// feeds ServerMetrics, and writes vLLM's status line to stderr every few seconds while busy.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "scheduler/engine.h"
#include "server/server_metrics.h"

namespace prunekv::server {

class EngineLoop {
 public:
  // Builds the engine (throws ConfigError as Engine does) and starts its thread. `metrics` and
  // `runner` must outlive the loop. status_interval_s <= 0: no status lines. `after_step` runs
  // on the engine thread after every step, once that step's output callbacks have all run, and
  // after stop()'s cancellations: callbacks that only collect hand their news on there, with one
  // wake-up per step however many requests made tokens.
  EngineLoop(ModelRunner& runner, EngineConfig config, ServerMetrics& metrics, double status_interval_s,
             std::function<void()> after_step = {});
  // stop().
  ~EngineLoop();
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  // Any thread. Submits unless `max_waiting` requests already wait beyond those running (then
  // returns nothing: the caller answers 503), or once stop() began. `on_output` runs on the
  // engine thread.
  std::optional<RequestId> try_submit(RequestSpec spec, Engine::OutputCallback on_output, size_t max_waiting);
  // Any thread. Ends the request as cancelled at the next step.
  void cancel(RequestId id);
  // Any thread. Requests submitted and not ended yet.
  size_t num_outstanding() const { return outstanding_.load(); }
  // Any thread. Waits until every submitted request ended or `seconds` passed; true when idle.
  bool wait_idle(double seconds);
  // Any thread. Ends the engine thread; requests still queued or running end as cancelled (their
  // callbacks run) and every block goes back; later submissions are refused. Owner thread only.
  void stop();

  size_t blocks_total() const { return blocks_total_; }

 private:
  void run();
  void wake();
  void status_line(double now);

  std::unique_ptr<Engine> engine_;  // touched by the engine thread only after the constructor
  ServerMetrics& metrics_;
  size_t blocks_total_;
  double status_interval_;
  std::function<void()> after_step_;
  std::atomic<size_t> outstanding_{0};
  std::atomic<size_t> running_{0};
  std::mutex mutex_;
  std::condition_variable wake_cv_;  // new work or stop
  std::condition_variable idle_cv_;  // a request ended
  bool woken_ = false;
  bool stopping_ = false;
  // Status line window (engine thread).
  double last_status_time_ = 0.0;
  MetricsSnapshot last_status_;
  std::thread thread_;
};

}  // namespace prunekv::server
