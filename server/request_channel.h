#pragma once
// Hands one request's outputs from the engine thread to the HTTP thread answering it: each new
// token (with where the decoded text ended after it) and the final output. The engine never
// waits on the HTTP side; the HTTP thread waits with a timeout so it can watch its client.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/request.h"

namespace prunekv::server {

class RequestChannel {
 public:
  // Engine thread (Engine::OutputCallback).
  void push(const RequestOutput& output, bool finished);

  // The HTTP thread's copy, extended by each wait().
  struct Update {
    std::string text;                // decoded text so far (non-final tokens)
    std::vector<TokenId> tokens;     // every non-final token so far
    std::vector<size_t> text_ends;   // text size after each token
    std::optional<RequestOutput> final;
  };
  // Waits up to `timeout` for a token `update` lacks or the final output, and appends what is new
  // to `update`; false when nothing new came in time.
  bool wait(Update& update, std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  Update state_;
};

}  // namespace prunekv::server
