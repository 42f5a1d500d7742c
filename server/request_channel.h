#pragma once
// Hands one request's outputs from the engine thread to the network thread answering it: each
// new token (with where the decoded text ended after it) and the final output. Neither side
// waits: the engine appends, and push() says when the network thread must be told (the first
// news since its last take()), so a connection is woken at most once however many tokens the
// engine makes in between.
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/request.h"

namespace prunekv::server {

class RequestChannel {
 public:
  // Engine thread (Engine::OutputCallback). True when this is the first news since the last
  // take(): the caller then tells the network thread to take().
  bool push(const RequestOutput& output, bool finished);

  // The network thread's copy, extended by each take().
  struct Update {
    std::string text;                // decoded text so far (non-final tokens)
    std::vector<TokenId> tokens;     // every non-final token so far
    std::vector<size_t> text_ends;   // text size after each token
    std::optional<RequestOutput> final;
  };
  // Appends to `update` what it lacks; false when there was nothing new.
  bool take(Update& update);

 private:
  std::mutex mutex_;
  Update state_;
  bool told_ = false;  // news pushed since the last take()
};

}  // namespace prunekv::server
