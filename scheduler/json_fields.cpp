#include "scheduler/json_fields.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace prunekv {

using nlohmann::json;

std::string describe_json(const json& value) {
  std::string dumped = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (dumped.size() > 40) dumped = dumped.substr(0, 37) + "...";
  return fmt::format("{} {}", value.type_name(), dumped);
}

void fail_field(std::string_view field, std::string_view expected, const json& found) {
  throw FieldError(std::string(field),
                   fmt::format("field \"{}\": expected {}, found {}", field, expected, describe_json(found)));
}

int64_t integer_field(const json& value, std::string_view field, int64_t min, int64_t max) {
  const std::string expected = fmt::format("an integer in [{}, {}]", min, max);
  if (!value.is_number_integer()) fail_field(field, expected, value);
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(max))
    fail_field(field, expected, value);
  const int64_t v = value.get<int64_t>();
  if (v < min || v > max) fail_field(field, expected, value);
  return v;
}

double number_field(const json& value, std::string_view field, std::string_view expected, double min, double max) {
  if (!value.is_number()) fail_field(field, expected, value);
  const double v = value.get<double>();
  if (!(v >= min && v <= max)) fail_field(field, expected, value);
  return v;
}

bool boolean_field(const json& value, std::string_view field) {
  if (!value.is_boolean()) fail_field(field, "true or false", value);
  return value.get<bool>();
}

std::vector<TokenId> token_ids_field(const json& value, std::string_view field) {
  constexpr std::string_view kExpected = "a non-empty array of token ids";
  if (!value.is_array() || value.empty()) fail_field(field, kExpected, value);
  std::vector<TokenId> tokens;
  tokens.reserve(value.size());
  for (const json& item : value) {
    if (!item.is_number_integer() || item.get<int64_t>() < 0 ||
        item.get<int64_t>() > std::numeric_limits<TokenId>::max())
      fail_field(field, kExpected, item);
    tokens.push_back(static_cast<TokenId>(item.get<int64_t>()));
  }
  return tokens;
}

std::vector<std::string> stop_field(const json& value, size_t max_strings) {
  const std::string expected =
      max_strings == SIZE_MAX ? std::string("null, a string or an array of non-empty strings")
                              : fmt::format("null, a string or an array of at most {} non-empty strings", max_strings);
  if (value.is_null()) return {};
  if (value.is_string()) {
    if (value.get_ref<const std::string&>().empty()) fail_field("stop", expected, value);
    return {value.get<std::string>()};
  }
  if (!value.is_array() || value.size() > max_strings) fail_field("stop", expected, value);
  std::vector<std::string> stop;
  for (const json& item : value) {
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) fail_field("stop", expected, value);
    stop.push_back(item.get<std::string>());
  }
  return stop;
}

bool read_sampling_field(const std::string& key, const json& value, RequestSpec& spec,
                         const SamplingFieldRules& rules) {
  constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();
  const bool known = key == "max_tokens" || key == "temperature" || key == "top_p" || key == "top_k" ||
                     key == "seed" || key == "stop" || key == "policy";
  if (!known) return false;
  if (value.is_null() && (rules.null_is_default || key == "stop")) return true;
  SamplingParams& s = spec.sampling;
  if (key == "max_tokens") {
    spec.max_tokens = static_cast<uint32_t>(integer_field(value, key, 1, kMaxInt32));
  } else if (key == "temperature") {
    const std::string expected = rules.max_temperature < 1e9 ? fmt::format("a number in [0, {}]", rules.max_temperature)
                                                              : std::string("a number >= 0");
    s.temperature = static_cast<float>(number_field(value, key, expected, 0, rules.max_temperature));
  } else if (key == "top_p") {
    s.top_p = static_cast<float>(number_field(value, key, "a number in (0, 1]", 1e-9, 1));
  } else if (key == "top_k") {
    s.top_k = static_cast<int32_t>(std::max<int64_t>(0, integer_field(value, key, rules.top_k_minus_one ? -1 : 0, kMaxInt32)));
  } else if (key == "seed") {
    s.seed = static_cast<uint64_t>(integer_field(value, key, 0, std::numeric_limits<int64_t>::max()));
  } else if (key == "stop") {
    spec.stop = stop_field(value, rules.max_stop_strings);
  } else {
    // Checked by the engine when the request is submitted: an unknown name fails this request only.
    if (!value.is_string() || value.get_ref<const std::string&>().empty())
      fail_field(key, "a pruning policy spec such as \"dbudget\" or \"snapkv:0.5\"", value);
    spec.policy = value.get<std::string>();
  }
  return true;
}

}  // namespace prunekv
