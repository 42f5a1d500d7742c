#include "scheduler/request_queue.h"

#include "common/check.h"

namespace prunekv::detail {

// Initial node capacity only: both queues allocate more nodes when producers outrun the engine.
RequestQueue::RequestQueue() : requests_(1024), cancels_(256) {}

RequestQueue::~RequestQueue() {
  Request* request = nullptr;
  while (requests_.pop(request)) delete request;
}

RequestId RequestQueue::push(RequestSpec spec, Engine::OutputCallback callback) {
  const RequestId id = num_issued_.fetch_add(1, std::memory_order_acq_rel) + 1;
  auto* request = new Request(id, std::move(spec), std::move(callback));
  PKV_CHECK(requests_.push(request), "request queue: node allocation failed");
  return id;
}

void RequestQueue::push_cancel(RequestId id) { PKV_CHECK(cancels_.push(id), "cancel queue: node allocation failed"); }

void RequestQueue::drain(std::vector<std::unique_ptr<Request>>& out) {
  Request* request = nullptr;
  while (requests_.pop(request)) {
    out.emplace_back(request);
    ++num_drained_;
  }
}

void RequestQueue::drain_cancels(std::vector<RequestId>& out) {
  RequestId id = 0;
  while (cancels_.pop(id)) out.push_back(id);
}

}  // namespace prunekv::detail
