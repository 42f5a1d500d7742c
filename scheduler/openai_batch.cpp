#include "scheduler/openai_batch.h"

#include <fmt/format.h>

#include <chrono>

#include "common/error.h"
#include "scheduler/json_fields.h"
#include "scheduler/openai_request.h"

namespace prunekv {
namespace {

using nlohmann::json;

std::string id_text(const json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

// The body through the OpenAI body parser the server uses, with the line's context: "line 3:
// field \"body.top_p\": ...". A Batch file is read, not streamed; "model" is not checked (one
// process serves one model).
RequestSpec body_request(const json& body, const std::string& custom_id, size_t line_number,
                         const RequestDefaults& defaults) {
  if (!body.is_object())
    throw InputError(fmt::format("line {}: field \"body\": expected an object, found {}", line_number,
                                 body.type_name()));
  OpenAiRequest request;
  try {
    request = parse_openai_request(body, OpenAiEndpoint::kCompletions, defaults.spec());
    if (request.stream) fail_field("stream", "false: a Batch file is answered in a file, not streamed", body["stream"]);
  } catch (const FieldError& e) {
    // Every message quotes its field; name it as the line has it, under "body".
    std::string message = e.what();
    if (const std::string quoted = fmt::format("\"{}\"", e.field()); !e.field().empty())
      if (const size_t at = message.find(quoted); at != std::string::npos)
        message.replace(at, quoted.size(), fmt::format("\"body.{}\"", e.field()));
    throw InputError(fmt::format("line {}: {}", line_number, message));
  }
  request.spec.id = custom_id;
  return request.spec;
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
  return body_request(field("body", "an object"), custom_id, line_number, defaults);
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
