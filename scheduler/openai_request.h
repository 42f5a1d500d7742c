#pragma once
// The body of an OpenAI completions or chat completions request, as `prunekv serve` receives it
// over HTTP and `prunekv generate` reads it from an OpenAI Batch file:
//
//   {"model": "stories260K", "prompt": "Once" | [1, 403, ...] | ["Once"] | [[1, 403]],
//    "max_tokens": 16, "temperature": 0, "top_p": 1, "top_k": -1, "seed": 7, "stop": "\n" | ["a", "b"],
//    "stream": true, "stream_options": {"include_usage": true}, "n": 1,
//    prunekv extensions: "policy": "dbudget", "ignore_eos": false, "return_token_ids": false}
//
// A chat body has "messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]
// instead of "prompt" (and may say "max_completion_tokens" for "max_tokens", and
// "add_generation_prompt": false to leave the assistant's cue out).
// Fields OpenAI defines that prunekv does not implement (echo, logprobs, best_of, suffix,
// penalties, logit_bias, ...) are accepted only at their neutral values; any other field is
// refused, so a typo never silently changes nothing. Free functions, no state.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/chat_template.h"
#include "scheduler/request.h"

namespace prunekv {

enum class OpenAiEndpoint { kCompletions, kChatCompletions };

struct OpenAiRequest {
  RequestSpec spec;                   // the prompt is unset for a chat: render `messages` into it
  std::vector<ChatMessage> messages;  // chat only
  bool add_generation_prompt = true;  // chat only
  std::optional<std::string> model;   // "model" when given (the caller decides whether it fits)
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  bool return_token_ids = false;  // add "token_ids" to each choice
};

// Parses `body` (already JSON) with `defaults` for what it leaves out (max_tokens: OpenAI's 16
// over HTTP, the command's default in a Batch file). Throws FieldError (scheduler/json_fields.h)
// naming the field, what was expected and what was found.
OpenAiRequest parse_openai_request(const nlohmann::json& body, OpenAiEndpoint endpoint, const RequestSpec& defaults);

}  // namespace prunekv
