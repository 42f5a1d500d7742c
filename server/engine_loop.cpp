#include "server/engine_loop.h"

#include <chrono>

#include "common/log.h"

namespace prunekv::server {

EngineLoop::EngineLoop(ModelRunner& runner, EngineConfig config, ServerMetrics& metrics, double status_interval_s,
                       std::function<void()> after_step)
    : metrics_(metrics), status_interval_(status_interval_s), after_step_(std::move(after_step)) {
  StepObserver previous = std::move(config.step_observer);
  config.step_observer = [this, previous = std::move(previous)](const StepStats& step) {
    metrics_.observe_step(step);
    if (previous) previous(step);
  };
  engine_ = std::make_unique<Engine>(runner, std::move(config));
  blocks_total_ = engine_->pool().num_total_blocks();
  last_status_time_ = runner.now();
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() { stop(); }

void EngineLoop::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_cv_.notify_one();
}

std::optional<RequestId> EngineLoop::try_submit(RequestSpec spec, Engine::OutputCallback on_output,
                                                size_t max_waiting) {
  size_t current = outstanding_.load();
  do {
    if (current >= running_.load() + max_waiting) return std::nullopt;
  } while (!outstanding_.compare_exchange_weak(current, current + 1));
  auto callback = [this, on_output = std::move(on_output)](const RequestOutput& output, bool finished) {
    if (!finished) {
      if (on_output) on_output(output, false);
      return;
    }
    metrics_.observe_finished(output);
    if (on_output) on_output(output, true);
    {
      std::lock_guard lock(mutex_);
      outstanding_.fetch_sub(1);
    }
    idle_cv_.notify_all();
  };
  RequestId id = kInvalidRequest;
  {
    // Under the lock that stop() sets stopping_ with: no submission reaches a destroyed engine.
    std::lock_guard lock(mutex_);
    if (stopping_) {
      outstanding_.fetch_sub(1);
      return std::nullopt;
    }
    id = engine_->submit(std::move(spec), std::move(callback));
  }
  wake();
  return id;
}

void EngineLoop::cancel(RequestId id) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // the engine cancels everything as it goes
    engine_->cancel(id);
  }
  wake();
}

bool EngineLoop::wait_idle(double seconds) {
  std::unique_lock lock(mutex_);
  return idle_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return outstanding_.load() == 0; });
}

void EngineLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void EngineLoop::run() {
  const auto interval = std::chrono::duration<double>(status_interval_ > 0 ? status_interval_ : 1.0);
  for (;;) {
    const bool more = engine_->step();
    if (after_step_) after_step_();
    running_.store(engine_->num_running());
    metrics_.observe_state(engine_->num_running(), engine_->num_waiting(), engine_->pool().num_used_blocks(),
                           blocks_total_);
    const double now = engine_->runner().now();
    if (status_interval_ > 0 && now - last_status_time_ >= status_interval_) status_line(now);
    std::unique_lock lock(mutex_);
    if (stopping_) break;
    if (!more) {
      wake_cv_.wait_for(lock, interval, [&] { return woken_ || stopping_; });
      woken_ = false;
      if (stopping_) break;
    }
  }
  // Cancels whatever is still queued or running (callbacks run here, on the engine thread).
  engine_.reset();
  if (after_step_) after_step_();
  idle_cv_.notify_all();
}

void EngineLoop::status_line(double now) {
  const MetricsSnapshot s = metrics_.snapshot();
  const double window = now - last_status_time_;
  const uint64_t prompt = s.prompt_tokens_computed - last_status_.prompt_tokens_computed;
  const uint64_t generated = s.generation_tokens - last_status_.generation_tokens;
  const bool busy = prompt + generated > 0 || s.num_running + s.num_waiting > 0;
  if (busy) {
    log::get("server")->info(
        "Avg prompt throughput: {:.1f} tokens/s, Avg generation throughput: {:.1f} tokens/s, Running: {} reqs, "
        "Waiting: {} reqs, KV cache usage: {:.1f}%, blocks freed by pruning: {}, mean kept fraction: {:.3f}",
        double(prompt) / window, double(generated) / window, s.num_running, s.num_waiting,
        s.blocks_total > 0 ? 100.0 * double(s.blocks_used) / double(s.blocks_total) : 0.0, s.blocks_freed_by_pruning,
        s.num_pruned > 0 ? s.kept_fraction_sum / double(s.num_pruned) : 1.0);
  }
  last_status_ = s;
  last_status_time_ = now;
}

}  // namespace prunekv::server
