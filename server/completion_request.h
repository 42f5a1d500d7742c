#pragma once
// The body of POST /v1/completions or /v1/chat/completions turned into an engine request: the
// OpenAI body parser (scheduler/openai_request.h) plus what only HTTP adds: JSON syntax errors,
// "model" naming another model (404), and errors as ApiError (400 naming the field).
#include <string>
#include <string_view>

#include "scheduler/openai_request.h"

namespace prunekv::server {

using CompletionRequest = OpenAiRequest;

// Parses and checks `body`. Throws ApiError: 400 naming the field, what was expected and what
// was found; 404 when "model" names another model than `model_name`.
CompletionRequest parse_completion_request(std::string_view body, const std::string& model_name,
                                           OpenAiEndpoint endpoint = OpenAiEndpoint::kCompletions);

}  // namespace prunekv::server
