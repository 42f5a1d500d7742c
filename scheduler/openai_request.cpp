#include "scheduler/openai_request.h"

#include <fmt/format.h>

#include "scheduler/json_fields.h"

namespace prunekv {
namespace {

using nlohmann::json;

// A prompt: a string, token ids, or a one-element array of either (OpenAI's batch form, n = 1).
void prompt_field(const json& value, RequestSpec& spec) {
  constexpr std::string_view kExpected = "a non-empty string or a non-empty array of token ids";
  const json* prompt = &value;
  if (value.is_array() && value.size() == 1 && (value[0].is_string() || value[0].is_array())) prompt = &value[0];
  if (prompt->is_string()) {
    if (prompt->get_ref<const std::string&>().empty()) fail_field("prompt", kExpected, value);
    spec.prompt = prompt->get<std::string>();
    return;
  }
  if (!prompt->is_array() || prompt->empty()) fail_field("prompt", kExpected, value);
  if (prompt->size() > 1 && (*prompt)[0].is_string())
    fail_field("prompt", "one prompt (a list of prompts is one request each: send them separately)", value);
  spec.prompt_tokens = token_ids_field(*prompt, "prompt");
}

std::vector<ChatMessage> messages_field(const json& value) {
  if (!value.is_array() || value.empty())
    fail_field("messages", "a non-empty array of {\"role\", \"content\"} objects", value);
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& m = value[i];
    const std::string at = fmt::format("messages[{}]", i);
    if (!m.is_object()) fail_field(at, "an object with \"role\" and \"content\"", m);
    ChatMessage message;
    bool has_role = false, has_content = false;
    for (const auto& [key, v] : m.items()) {
      if (key == "role") {
        if (!v.is_string() || !is_chat_role(v.get_ref<const std::string&>()))
          fail_field(at + ".role", "\"system\", \"user\" or \"assistant\"", v);
        message.role = v.get<std::string>();
        has_role = true;
      } else if (key == "content") {
        if (!v.is_string()) fail_field(at + ".content", "a string", v);
        message.content = v.get<std::string>();
        has_content = true;
      } else if (key != "name") {
        throw FieldError(at + "." + key, fmt::format("unknown field \"{}.{}\"", at, key));
      }
    }
    if (!has_role) throw FieldError(at + ".role", fmt::format("missing field \"{}.role\"", at));
    if (!has_content) throw FieldError(at + ".content", fmt::format("missing field \"{}.content\"", at));
    messages.push_back(std::move(message));
  }
  return messages;
}

// OpenAI fields prunekv does not implement: fine at their neutral value, refused otherwise.
std::optional<bool> unsupported_is_neutral(const std::string& key, const json& value) {
  if (key == "user") return true;
  if (key == "echo") return value.is_null() || value == false;
  if (key == "logprobs" || key == "suffix" || key == "top_logprobs") return value.is_null() || value == false;
  if (key == "best_of") return value.is_null() || value == 1;
  if (key == "presence_penalty" || key == "frequency_penalty") return value.is_null() || value == 0;
  if (key == "repetition_penalty") return value.is_null() || value == 1;
  if (key == "logit_bias") return value.is_null() || (value.is_object() && value.empty());
  return std::nullopt;
}

}  // namespace

OpenAiRequest parse_openai_request(const json& body, OpenAiEndpoint endpoint, const RequestSpec& defaults) {
  if (!body.is_object()) throw FieldError("", fmt::format("expected a JSON object body, found {}", describe_json(body)));
  const bool chat = endpoint == OpenAiEndpoint::kChatCompletions;
  const std::string_view input = chat ? "messages" : "prompt";
  constexpr SamplingFieldRules kOpenAi{.top_k_minus_one = true, .max_temperature = 2, .max_stop_strings = 4,
                                       .null_is_default = true};
  OpenAiRequest request;
  RequestSpec& spec = request.spec;
  spec = defaults;
  bool has_input = false;
  const json* stream_options = nullptr;
  for (const auto& [key, value] : body.items()) {
    if (read_sampling_field(chat && key == "max_completion_tokens" ? "max_tokens" : key, value, spec, kOpenAi))
      continue;
    if (key == input) {
      if (chat) {
        request.messages = messages_field(value);
      } else {
        prompt_field(value, spec);
      }
      has_input = true;
    } else if (key == "model") {
      if (!value.is_string()) fail_field(key, "a string", value);
      request.model = value.get<std::string>();
    } else if (key == "stream") {
      request.stream = !value.is_null() && boolean_field(value, key);
    } else if (key == "stream_options") {
      if (!value.is_null()) stream_options = &value;
    } else if (key == "n") {
      if (!value.is_null() && value != 1) fail_field(key, "1 (one completion per request)", value);
    } else if (key == "ignore_eos") {
      spec.ignore_eos = boolean_field(value, key);
    } else if (key == "return_token_ids") {
      request.return_token_ids = boolean_field(value, key);
    } else if (chat && key == "add_generation_prompt") {
      request.add_generation_prompt = boolean_field(value, key);
    } else if (const std::optional<bool> neutral = unsupported_is_neutral(key, value)) {
      if (!*neutral)
        throw FieldError(key, fmt::format("field \"{}\": not supported by prunekv, found {}", key, describe_json(value)));
    } else {
      throw FieldError(key, fmt::format("unknown field \"{}\"", key));
    }
  }
  if (!has_input)
    throw FieldError(std::string(input),
                     chat ? "missing field \"messages\": expected an array of {\"role\", \"content\"} objects"
                          : "missing field \"prompt\": expected a string or an array of token ids");
  if (stream_options != nullptr) {
    if (!request.stream) fail_field("stream_options", "null unless \"stream\" is true", *stream_options);
    if (!stream_options->is_object()) fail_field("stream_options", "an object", *stream_options);
    for (const auto& [key, value] : stream_options->items()) {
      if (key == "include_usage") {
        request.include_usage = !value.is_null() && boolean_field(value, "stream_options.include_usage");
      } else if (key != "continuous_usage_stats") {
        throw FieldError("stream_options." + key, fmt::format("unknown field \"stream_options.{}\"", key));
      }
    }
  }
  try {
    spec.sampling.validate();
  } catch (const InputError& e) {
    throw FieldError("", e.what());
  }
  return request;
}

}  // namespace prunekv
