#include "server/completion_request.h"

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "server/api_error.h"

namespace prunekv::server {
namespace {

using nlohmann::json;

std::string describe(const json& value) {
  std::string dumped = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (dumped.size() > 40) dumped = dumped.substr(0, 37) + "...";
  return fmt::format("{} {}", value.type_name(), dumped);
}

[[noreturn]] void fail(std::string_view field, std::string_view expected, const json& found) {
  throw ApiError(400, fmt::format("field \"{}\": expected {}, found {}", field, expected, describe(found)),
                 std::string(field));
}

int64_t integer(const json& value, std::string_view field, int64_t min, int64_t max) {
  const std::string expected = fmt::format("an integer in [{}, {}]", min, max);
  if (!value.is_number_integer()) fail(field, expected, value);
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(max)) fail(field, expected, value);
  const int64_t v = value.get<int64_t>();
  if (v < min || v > max) fail(field, expected, value);
  return v;
}

double number(const json& value, std::string_view field, std::string_view expected, double min, double max) {
  if (!value.is_number()) fail(field, expected, value);
  const double v = value.get<double>();
  if (!(v >= min && v <= max)) fail(field, expected, value);
  return v;
}

bool boolean(const json& value, std::string_view field) {
  if (!value.is_boolean()) fail(field, "true or false", value);
  return value.get<bool>();
}

// A prompt: a string, token ids, or a one-element array of either (OpenAI's batch form, n = 1).
void prompt_field(const json& value, RequestSpec& spec) {
  constexpr std::string_view kExpected = "a non-empty string or a non-empty array of token ids";
  const json* prompt = &value;
  if (value.is_array() && value.size() == 1 && (value[0].is_string() || value[0].is_array())) prompt = &value[0];
  if (prompt->is_string()) {
    if (prompt->get_ref<const std::string&>().empty()) fail("prompt", kExpected, value);
    spec.prompt = prompt->get<std::string>();
    return;
  }
  if (!prompt->is_array() || prompt->empty()) fail("prompt", kExpected, value);
  spec.prompt_tokens.reserve(prompt->size());
  for (const json& item : *prompt) {
    if (!item.is_number_integer() || item.get<int64_t>() < 0 ||
        item.get<int64_t>() > std::numeric_limits<TokenId>::max())
      fail("prompt", kExpected, item);
    spec.prompt_tokens.push_back(static_cast<TokenId>(item.get<int64_t>()));
  }
}

std::vector<std::string> stop_field(const json& value) {
  constexpr std::string_view kExpected = "null, a string or an array of at most 4 non-empty strings";
  if (value.is_null()) return {};
  if (value.is_string()) {
    if (value.get_ref<const std::string&>().empty()) fail("stop", kExpected, value);
    return {value.get<std::string>()};
  }
  if (!value.is_array() || value.size() > 4) fail("stop", kExpected, value);
  std::vector<std::string> stop;
  for (const json& item : value) {
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) fail("stop", kExpected, value);
    stop.push_back(item.get<std::string>());
  }
  return stop;
}

// OpenAI fields prunekv does not implement: fine at their neutral value, refused otherwise.
bool neutral_unsupported(const std::string& key, const json& value) {
  if (key == "echo") return value.is_null() || value == false;
  if (key == "logprobs" || key == "suffix" || key == "user") return value.is_null() || key == "user";
  if (key == "best_of") return value.is_null() || value == 1;
  if (key == "presence_penalty" || key == "frequency_penalty") return value.is_null() || value == 0;
  if (key == "repetition_penalty") return value.is_null() || value == 1;
  if (key == "logit_bias") return value.is_null() || (value.is_object() && value.empty());
  return false;
}

bool is_unsupported_field(const std::string& key) {
  return key == "echo" || key == "logprobs" || key == "suffix" || key == "user" || key == "best_of" ||
         key == "presence_penalty" || key == "frequency_penalty" || key == "repetition_penalty" || key == "logit_bias";
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body, const std::string& model_name) {
  json object;
  try {
    object = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw ApiError(400, fmt::format("malformed JSON body: {}", e.what()));
  }
  if (!object.is_object()) throw ApiError(400, fmt::format("expected a JSON object body, found {}", describe(object)));

  CompletionRequest request;
  RequestSpec& spec = request.spec;
  spec.max_tokens = 16;  // OpenAI's default
  bool has_prompt = false;
  const json* stream_options = nullptr;
  for (const auto& [key, value] : object.items()) {
    if (key == "model") {
      if (!value.is_string()) fail("model", "a string", value);
      if (value.get_ref<const std::string&>() != model_name)
        throw ApiError(404, fmt::format("model \"{}\" does not exist: this server serves \"{}\"",
                                        value.get<std::string>(), model_name),
                       "model", "not_found_error");
    } else if (key == "prompt") {
      prompt_field(value, spec);
      has_prompt = true;
    } else if (key == "max_tokens") {
      if (!value.is_null()) spec.max_tokens = static_cast<uint32_t>(integer(value, key, 1, std::numeric_limits<int32_t>::max()));
    } else if (key == "temperature") {
      if (!value.is_null()) spec.sampling.temperature = static_cast<float>(number(value, key, "a number in [0, 2]", 0, 2));
    } else if (key == "top_p") {
      if (!value.is_null()) spec.sampling.top_p = static_cast<float>(number(value, key, "a number in (0, 1]", 1e-9, 1));
    } else if (key == "top_k") {
      // vLLM's convention: -1 (or 0) is the whole vocabulary.
      if (!value.is_null())
        spec.sampling.top_k = static_cast<int32_t>(std::max<int64_t>(0, integer(value, key, -1, std::numeric_limits<int32_t>::max())));
    } else if (key == "seed") {
      if (!value.is_null()) spec.sampling.seed = static_cast<uint64_t>(integer(value, key, 0, std::numeric_limits<int64_t>::max()));
    } else if (key == "stop") {
      spec.stop = stop_field(value);
    } else if (key == "stream") {
      request.stream = value.is_null() ? false : boolean(value, key);
    } else if (key == "stream_options") {
      if (!value.is_null()) stream_options = &value;
    } else if (key == "n") {
      if (!value.is_null()) integer(value, key, 1, 1);
    } else if (key == "policy") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty())
        fail(key, "a pruning policy spec such as \"dbudget\" or \"snapkv:0.5\"", value);
      spec.policy = value.get<std::string>();
    } else if (key == "ignore_eos") {
      spec.ignore_eos = boolean(value, key);
    } else if (key == "return_token_ids") {
      request.return_token_ids = boolean(value, key);
    } else if (is_unsupported_field(key)) {
      if (!neutral_unsupported(key, value))
        throw ApiError(400, fmt::format("field \"{}\": not supported by prunekv, found {}", key, describe(value)), key);
    } else {
      throw ApiError(400, fmt::format("unknown field \"{}\"", key), key);
    }
  }
  if (!has_prompt) throw ApiError(400, "missing field \"prompt\": expected a string or an array of token ids", "prompt");
  if (stream_options != nullptr) {
    if (!request.stream) fail("stream_options", "null unless \"stream\" is true", *stream_options);
    if (!stream_options->is_object()) fail("stream_options", "an object", *stream_options);
    for (const auto& [key, value] : stream_options->items()) {
      if (key == "include_usage") {
        request.include_usage = value.is_null() ? false : boolean(value, "stream_options.include_usage");
      } else if (key != "continuous_usage_stats") {
        throw ApiError(400, fmt::format("unknown field \"stream_options.{}\"", key), "stream_options." + key);
      }
    }
  }
  try {
    spec.sampling.validate();
  } catch (const InputError& e) {
    throw ApiError(400, e.what());
  }
  return request;
}

}  // namespace prunekv::server
