#include "scheduler/stop_conditions.h"

#include <algorithm>

namespace prunekv::detail {
namespace {

// Searches only the tail the new piece could complete a stop string in: O(piece + stop).
bool cut_at_stop_string(std::string& text, size_t old_size, std::span<const std::string> stops) {
  for (const std::string& stop : stops) {
    if (stop.empty()) continue;
    const size_t from = old_size >= stop.size() ? old_size - stop.size() + 1 : 0;
    const size_t at = text.find(stop, from);
    if (at != std::string::npos) {
      text.resize(at);
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<FinishReason> append_token(Request& request, TokenId token, std::span<const TokenId> stop_tokens,
                                         const Tokenizer* tokenizer) {
  RequestOutput& out = request.output;
  if (!request.spec.ignore_eos && std::find(stop_tokens.begin(), stop_tokens.end(), token) != stop_tokens.end())
    return FinishReason::kStop;
  const TokenId prev = request.tokens.back();
  request.tokens.push_back(token);
  out.output_tokens.push_back(token);
  if (tokenizer != nullptr) {
    const size_t old_size = out.text.size();
    out.text += tokenizer->decode(prev, token);
    if (cut_at_stop_string(out.text, old_size, request.spec.stop)) return FinishReason::kStop;
  }
  if (out.output_tokens.size() >= request.spec.max_tokens) return FinishReason::kLength;
  const std::vector<TokenId>& forced = request.spec.forced_tokens;
  if (!forced.empty() && out.output_tokens.size() >= forced.size()) return FinishReason::kLength;
  return std::nullopt;
}

}  // namespace prunekv::detail
