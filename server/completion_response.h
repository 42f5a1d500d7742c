#pragma once
// OpenAI response bodies for /v1/completions and /v1/chat/completions: the whole answer, and the
// Server-Sent Events chunks of a streamed one. Each carries a "prunekv" field with what pruning
// did. A completion's choice holds "text"; a chat's holds "message" {"role", "content"}, its
// chunks' "delta" {"content"} (the first chunk announces the role, chat_role_chunk()).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "scheduler/request.h"

namespace prunekv::server {

// Identity shared by every chunk of one completion.
struct CompletionIds {
  std::string id;     // "cmpl-<n>", "chatcmpl-<n>"
  int64_t created = 0;  // Unix seconds
  std::string model;
  bool chat = false;  // chat.completion shapes
};

// "stop", "length", or "abort" (cancelled); OpenAI's names, vLLM's for the last.
std::string_view finish_reason_name(FinishReason reason);
// {"kv_kept_fraction", "kv_kept_block_fraction", "blocks_freed_by_pruning", "num_preemptions"}.
nlohmann::json prunekv_field(const RequestOutput& output);
nlohmann::json usage_field(const RequestOutput& output);

// The non-streamed answer for a request that finished (stop or length).
nlohmann::json completion_body(const CompletionIds& ids, const RequestOutput& output, bool token_ids);

// One SSE event ("data: {...}\n\n") with one choice; `finish` and `output` (for the prunekv
// field) only on the last token's chunk.
std::string completion_chunk(const CompletionIds& ids, std::string_view text, std::span<const TokenId> tokens,
                             bool token_ids, const RequestOutput* finished_output);
// A chat stream's first event: {"delta": {"role": "assistant", "content": ""}}.
std::string chat_role_chunk(const CompletionIds& ids);
// The usage event (stream_options.include_usage): no choices.
std::string usage_chunk(const CompletionIds& ids, const RequestOutput& output);
inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

// JSON text for the wire; bytes that are not valid UTF-8 become U+FFFD instead of throwing.
std::string dump_json(const nlohmann::json& value);

}  // namespace prunekv::server
