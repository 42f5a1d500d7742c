#pragma once
// OpenAI's Batch file format, the shape `vllm run-batch` reads and writes. Input, one per line:
//   {"custom_id": "r1", "method": "POST", "url": "/v1/completions",
//    "body": {"model": "m", "prompt": "text" | [token ids], "max_tokens": N, "temperature": T,
//             "top_p": P, "top_k": K, "seed": S, "stop": "s" | ["s", ...], "policy": "dbudget"}}
// The body is read by the OpenAI body parser `prunekv serve` uses (scheduler/openai_request.h),
// its errors naming "body.FIELD"; "model" is not checked (one process serves one model), "n"
// must be 1 and "stream" false. Output, one per line:
//   {"id": "prunekv-r1", "custom_id": "r1",
//    "response": {"status_code": 200, "request_id": "prunekv-r1",
//                 "body": {"id": "cmpl-r1", "object": "text_completion", "created": UNIX_S,
//                          "model": "m", "choices": [{"index": 0, "text": "...",
//                          "logprobs": null, "finish_reason": "stop" | "length"}],
//                          "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}},
//    "error": null}
// A line that cannot be served gets status_code 400, a null body and "error": {"message"}.
// Free functions, no state.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "scheduler/jsonl.h"
#include "scheduler/request.h"

namespace prunekv {

// True when `object` has the fields that mark an OpenAI Batch line ("custom_id" and "body").
bool looks_like_openai_batch_line(const nlohmann::json& object);

// One non-blank line of an OpenAI Batch input file: its spec (spec.id = custom_id) or why it
// cannot be served. parsed.id is the custom_id when the line has a string one, else line_number.
ParsedLine parse_openai_batch_line(std::string_view text, size_t line_number, const RequestDefaults& defaults);

nlohmann::ordered_json openai_batch_output_record(const nlohmann::json& custom_id, const RequestOutput& output,
                                                  std::string_view model);
nlohmann::ordered_json openai_batch_error_record(const nlohmann::json& custom_id, std::string_view message);

}  // namespace prunekv
