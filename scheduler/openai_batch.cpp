#include "scheduler/openai_batch.h"

#include <fmt/format.h>

#include <chrono>

#include "common/error.h"

namespace prunekv {
namespace {

using nlohmann::json;

std::string id_text(const json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

// The body in prunekv's own line shape, so one parser checks every field the same way. OpenAI's
// "prompt" may be text, token ids, or a list of prompts (one request each in OpenAI; refused here,
// as each line must stay one request for the output to line up).
json body_as_request(const json& body, const std::string& custom_id, size_t line_number) {
  if (!body.is_object())
    throw InputError(fmt::format("line {}: field \"body\": expected an object, found {}", line_number,
                                 body.type_name()));
  json request = body;
  request.erase("model");
  request["id"] = custom_id;
  if (request.contains("n") && request["n"] != 1)
    throw InputError(fmt::format("line {}: field \"body.n\": expected 1, found {}: one line, one completion",
                                 line_number, request["n"].dump()));
  request.erase("n");
  if (request.contains("prompt") && request["prompt"].is_array()) {
    json prompt = request["prompt"];
    request.erase("prompt");
    if (prompt.size() == 1 && prompt[0].is_string())
      request["prompt"] = prompt[0];
    else if (!prompt.empty() && prompt[0].is_number_integer())
      request["prompt_tokens"] = prompt;
    else
      throw InputError(fmt::format(
          "line {}: field \"body.prompt\": expected a string or an array of token ids, found {}: "
          "put each prompt of a list on a line of its own",
          line_number, prompt.dump().substr(0, 40)));
  }
  return request;
}

RequestSpec parse_openai_object(const json& object, size_t line_number, const RequestDefaults& defaults) {
  const auto field = [&](const char* name, const char* expected) -> const json& {
    if (!object.contains(name))
      throw InputError(fmt::format("line {}: missing field \"{}\": expected {} (OpenAI Batch format)",
                                   line_number, name, expected));
    return object[name];
  };
  const json& custom_id = field("custom_id", "a string");
  if (!custom_id.is_string())
    throw InputError(fmt::format("line {}: field \"custom_id\": expected a string, found {}", line_number,
                                 custom_id.dump()));
  if (field("method", "\"POST\"") != "POST")
    throw InputError(fmt::format("line {}: field \"method\": expected \"POST\", found {}", line_number,
                                 object["method"].dump()));
  if (field("url", "\"/v1/completions\"") != "/v1/completions")
    throw InputError(fmt::format(
        "line {}: field \"url\": expected \"/v1/completions\", found {}: prunekv serves raw completions "
        "(a chat request needs the model's chat template)",
        line_number, object["url"].dump()));
  return parse_request_object(body_as_request(field("body", "an object"), custom_id, line_number),
                              line_number, defaults);
}

}  // namespace

bool looks_like_openai_batch_line(const json& object) {
  return object.is_object() && object.contains("custom_id") && object.contains("body");
}

ParsedLine parse_openai_batch_line(std::string_view text, size_t line_number, const RequestDefaults& defaults) {
  ParsedLine parsed;
  parsed.line_number = line_number;
  parsed.id = line_number;
  json object;
  try {
    object = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    parsed.error = fmt::format("line {}: malformed JSON: {}", line_number, e.what());
    return parsed;
  }
  if (object.is_object() && object.contains("custom_id") && object["custom_id"].is_string())
    parsed.id = object["custom_id"];
  try {
    parsed.spec = parse_openai_object(object, line_number, defaults);
  } catch (const InputError& e) {
    parsed.error = e.what();
  }
  return parsed;
}

nlohmann::ordered_json openai_batch_output_record(const json& custom_id, const RequestOutput& output,
                                                  std::string_view model) {
  if (output.finish_reason == FinishReason::kError) return openai_batch_error_record(custom_id, output.error);
  if (output.finish_reason == FinishReason::kCancelled) return openai_batch_error_record(custom_id, "cancelled");
  const std::string id = id_text(custom_id);
  const auto created = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  nlohmann::ordered_json choice{{"index", 0},
                                {"text", output.text},
                                {"logprobs", nullptr},
                                {"finish_reason", std::string(to_string(output.finish_reason))}};
  nlohmann::ordered_json body{
      {"id", "cmpl-" + id},
      {"object", "text_completion"},
      {"created", created},
      {"model", model},
      {"choices", nlohmann::ordered_json::array({choice})},
      {"usage",
       {{"prompt_tokens", output.num_prompt_tokens},
        {"completion_tokens", output.output_tokens.size()},
        {"total_tokens", output.num_prompt_tokens + output.output_tokens.size()}}}};
  return nlohmann::ordered_json{
      {"id", "prunekv-" + id},
      {"custom_id", custom_id},
      {"response", {{"status_code", 200}, {"request_id", "prunekv-" + id}, {"body", std::move(body)}}},
      {"error", nullptr}};
}

nlohmann::ordered_json openai_batch_error_record(const json& custom_id, std::string_view message) {
  const std::string id = id_text(custom_id);
  return nlohmann::ordered_json{
      {"id", "prunekv-" + id},
      {"custom_id", custom_id},
      {"response", {{"status_code", 400}, {"request_id", "prunekv-" + id}, {"body", nullptr}}},
      {"error", {{"message", message}}}};
}

}  // namespace prunekv
