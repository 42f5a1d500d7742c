#pragma once
// The body of POST /v1/completions (OpenAI's legacy completions API) turned into an engine
// RequestSpec, with the few choices that shape the HTTP answer (streaming, usage, token ids).
//
//   {"model": "stories260K", "prompt": "Once" | [1, 403, ...], "max_tokens": 16,
//    "temperature": 0, "top_p": 1, "top_k": -1, "seed": 7, "stop": "\n" | ["a", "b"],
//    "stream": true, "stream_options": {"include_usage": true}, "n": 1,
//    prunekv extensions: "policy": "dbudget", "ignore_eos": false, "return_token_ids": false}
//
// Fields OpenAI defines that prunekv does not implement (echo, logprobs, best_of, suffix,
// penalties, logit_bias) are accepted only at their neutral values; any other field is refused,
// so a typo never silently changes nothing.
#include <string>
#include <string_view>

#include "scheduler/request.h"

namespace prunekv::server {

struct CompletionRequest {
  RequestSpec spec;
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  bool return_token_ids = false;  // add "token_ids" to each choice
};

// Parses and checks `body`. Throws ApiError: 400 naming the field, what was expected and what
// was found; 404 when "model" names another model than `model_name`.
CompletionRequest parse_completion_request(std::string_view body, const std::string& model_name);

}  // namespace prunekv::server
