#pragma once
// The engine's only multi-producer edge: submissions and cancellations pushed from any thread
// through lock-free queues, drained by the engine thread. Ids come from one atomic counter, so
// has_pending() can tell that a submission is still being pushed.
#include <atomic>
#include <memory>
#include <vector>

#include <boost/lockfree/queue.hpp>

#include "scheduler/request_state.h"

namespace prunekv::detail {

class RequestQueue {
 public:
  RequestQueue();
  ~RequestQueue();  // deletes requests never drained
  RequestQueue(const RequestQueue&) = delete;
  RequestQueue& operator=(const RequestQueue&) = delete;

  // Any thread. Takes ownership and returns the new request's id.
  RequestId push(RequestSpec spec, Engine::OutputCallback callback);
  // Any thread.
  void push_cancel(RequestId id);

  // Engine thread. Moves every queued request (ownership) / cancellation to `out`.
  void drain(std::vector<std::unique_ptr<Request>>& out);
  void drain_cancels(std::vector<RequestId>& out);

  // Engine thread: a submission whose id was handed out has not been drained yet.
  bool has_pending() const { return num_drained_ < num_issued_.load(std::memory_order_acquire); }
  uint64_t num_drained() const { return num_drained_; }

 private:
  std::atomic<uint64_t> num_issued_{0};  // ids 1..num_issued_ handed out
  uint64_t num_drained_ = 0;
  boost::lockfree::queue<Request*> requests_;
  boost::lockfree::queue<RequestId> cancels_;
};

}  // namespace prunekv::detail
