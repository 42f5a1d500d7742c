#include "server/request_channel.h"

#include <utility>

namespace prunekv::server {

bool RequestChannel::push(const RequestOutput& output, bool finished) {
  std::lock_guard lock(mutex_);
  if (finished) {
    state_.final = output;
  } else {
    // Before the end the text only grows: append the new piece.
    state_.text.append(output.text, state_.text.size());
    state_.tokens.push_back(output.output_tokens.back());
    state_.text_ends.push_back(output.text.size());
  }
  return !std::exchange(told_, true);
}

bool RequestChannel::take(Update& update) {
  std::lock_guard lock(mutex_);
  told_ = false;
  const size_t seen = update.tokens.size();
  const bool fresh = (state_.final.has_value() && !update.final) || state_.tokens.size() > seen;
  if (!fresh) return false;
  update.text.append(state_.text, update.text.size());
  update.tokens.insert(update.tokens.end(), state_.tokens.begin() + seen, state_.tokens.end());
  update.text_ends.insert(update.text_ends.end(), state_.text_ends.begin() + seen, state_.text_ends.end());
  if (state_.final && !update.final) update.final = state_.final;
  return true;
}

}  // namespace prunekv::server
