#pragma once
// Readers for the request fields every JSON request shape shares (prunekv's JSONL lines, OpenAI's
// completions and chat bodies over HTTP or in a Batch file): each checks one value's type and
// range and throws FieldError naming the field, what was expected and what was found, so every
// front end words a bad value the same way and adds only its own context ("line 3: ", HTTP 400).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/ids.h"
#include "scheduler/request.h"

namespace prunekv {

// "field \"top_p\": expected a number in (0, 1], found number 2"; field() is "top_p".
class FieldError : public InputError {
 public:
  FieldError(std::string field, const std::string& message) : InputError(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

// "string \"abc\"": the value's JSON type and its first 40 bytes of JSON text (invalid UTF-8
// replaced, never thrown on).
std::string describe_json(const nlohmann::json& value);

[[noreturn]] void fail_field(std::string_view field, std::string_view expected, const nlohmann::json& found);

int64_t integer_field(const nlohmann::json& value, std::string_view field, int64_t min, int64_t max);
double number_field(const nlohmann::json& value, std::string_view field, std::string_view expected, double min,
                    double max);
bool boolean_field(const nlohmann::json& value, std::string_view field);
// A non-empty array of token ids in [0, TokenId max].
std::vector<TokenId> token_ids_field(const nlohmann::json& value, std::string_view field);
// A string or an array of at most max_strings strings, none empty; null is no stop string.
std::vector<std::string> stop_field(const nlohmann::json& value, size_t max_strings);

// How the shared sampling fields are read where the front ends differ.
struct SamplingFieldRules {
  bool top_k_minus_one = false;  // vLLM's convention: top_k -1 is the whole vocabulary (as 0)
  double max_temperature = 1e9;  // OpenAI caps it at 2
  size_t max_stop_strings = SIZE_MAX;  // OpenAI allows 4
  bool null_is_default = false;  // OpenAI: a null value leaves the default
};

// Reads `key` into `spec` when it is one of max_tokens, temperature, top_p, top_k, seed, stop,
// policy; false for any other key (left to the caller).
bool read_sampling_field(const std::string& key, const nlohmann::json& value, RequestSpec& spec,
                         const SamplingFieldRules& rules);

}  // namespace prunekv
