#include "server/completion_request.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "scheduler/json_fields.h"
#include "server/api_error.h"

namespace prunekv::server {

CompletionRequest parse_completion_request(std::string_view body, const std::string& model_name,
                                           OpenAiEndpoint endpoint) {
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw ApiError(400, fmt::format("malformed JSON body: {}", e.what()));
  }
  RequestSpec defaults;
  defaults.max_tokens = 16;  // OpenAI's default
  CompletionRequest request;
  try {
    request = parse_openai_request(object, endpoint, defaults);
  } catch (const FieldError& e) {
    throw ApiError(400, e.what(), e.field());
  }
  if (request.model && *request.model != model_name)
    throw ApiError(404, fmt::format("model \"{}\" does not exist: this server serves \"{}\"", *request.model, model_name),
                   "model", "not_found_error");
  return request;
}

}  // namespace prunekv::server
