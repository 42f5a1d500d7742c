#include "scheduler/jsonl.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>

#include "common/error.h"
#include "common/log.h"

namespace prunekv {
namespace {

using nlohmann::json;

// nlohmann's type_name(): "null", "boolean", "number", "string", "array", "object".
std::string describe(const json& value) {
  std::string dumped = value.dump();
  if (dumped.size() > 40) dumped = dumped.substr(0, 37) + "...";
  return fmt::format("{} {}", value.type_name(), dumped);
}

[[noreturn]] void fail(size_t line_number, std::string_view field, std::string_view expected,
                       const json& found) {
  throw InputError(fmt::format("line {}: field \"{}\": expected {}, found {}", line_number, field, expected,
                               describe(found)));
}

int64_t integer_field(const json& object, std::string_view field, size_t line_number, int64_t min,
                      int64_t max) {
  const json& value = object.at(field);
  const std::string expected = fmt::format("an integer in [{}, {}]", min, max);
  if (!value.is_number_integer()) fail(line_number, field, expected, value);
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(max))
    fail(line_number, field, expected, value);
  const int64_t v = value.get<int64_t>();
  if (v < min || v > max) fail(line_number, field, expected, value);
  return v;
}

double number_field(const json& object, std::string_view field, size_t line_number,
                    std::string_view expected) {
  const json& value = object.at(field);
  if (!value.is_number()) fail(line_number, field, expected, value);
  return value.get<double>();
}

std::vector<std::string> stop_field(const json& value, size_t line_number) {
  constexpr std::string_view kExpected = "a string or an array of strings";
  if (value.is_string()) return {value.get<std::string>()};
  if (!value.is_array()) fail(line_number, "stop", kExpected, value);
  std::vector<std::string> stop;
  for (const json& item : value) {
    if (!item.is_string()) fail(line_number, "stop", kExpected, value);
    stop.push_back(item.get<std::string>());
  }
  return stop;
}

std::vector<TokenId> prompt_tokens_field(const json& value, size_t line_number) {
  constexpr std::string_view kExpected = "a non-empty array of non-negative token ids";
  if (!value.is_array() || value.empty()) fail(line_number, "prompt_tokens", kExpected, value);
  std::vector<TokenId> tokens;
  tokens.reserve(value.size());
  for (const json& item : value) {
    if (!item.is_number_integer() || item.get<int64_t>() < 0 ||
        item.get<int64_t>() > std::numeric_limits<TokenId>::max())
      fail(line_number, "prompt_tokens", kExpected, item);
    tokens.push_back(static_cast<TokenId>(item.get<int64_t>()));
  }
  return tokens;
}

// The id to echo: the line's own when it is a string or an integer, else the line number.
json line_id(const json& object, size_t line_number) {
  if (object.is_object() && object.contains("id") &&
      (object["id"].is_string() || object["id"].is_number_integer()))
    return object["id"];
  return line_number;
}

std::string id_text(const json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

}  // namespace

RequestSpec parse_request_line(std::string_view line, size_t line_number, const RequestDefaults& defaults) {
  json object;
  try {
    object = json::parse(line);
  } catch (const json::parse_error& e) {
    throw InputError(fmt::format("line {}: malformed JSON: {}", line_number, e.what()));
  }
  return parse_request_object(object, line_number, defaults);
}

RequestSpec parse_request_object(const json& object, size_t line_number, const RequestDefaults& defaults) {
  if (!object.is_object())
    throw InputError(fmt::format("line {}: expected a JSON object, found {}", line_number, describe(object)));

  RequestSpec spec;
  if (object.contains("id") && !object["id"].is_string() && !object["id"].is_number_integer())
    fail(line_number, "id", "a string or an integer", object["id"]);
  spec.id = id_text(line_id(object, line_number));

  // prompt_tokens wins when both are present: the ids are exact, the text must be re-encoded.
  if (object.contains("prompt_tokens")) {
    spec.prompt_tokens = prompt_tokens_field(object["prompt_tokens"], line_number);
  } else if (object.contains("prompt")) {
    if (!object["prompt"].is_string()) fail(line_number, "prompt", "a string", object["prompt"]);
    spec.prompt = object["prompt"].get<std::string>();
  } else {
    throw InputError(fmt::format(
        "line {}: missing prompt: expected a \"prompt\" string or a \"prompt_tokens\" array", line_number));
  }

  spec.max_tokens = defaults.max_tokens;
  if (object.contains("max_tokens"))
    spec.max_tokens = static_cast<uint32_t>(
        integer_field(object, "max_tokens", line_number, 1, std::numeric_limits<int32_t>::max()));
  spec.sampling = defaults.sampling;
  if (object.contains("temperature"))
    spec.sampling.temperature =
        static_cast<float>(number_field(object, "temperature", line_number, "a number >= 0"));
  if (object.contains("top_p"))
    spec.sampling.top_p =
        static_cast<float>(number_field(object, "top_p", line_number, "a number in (0, 1]"));
  if (object.contains("top_k"))
    spec.sampling.top_k = static_cast<int32_t>(
        integer_field(object, "top_k", line_number, 0, std::numeric_limits<int32_t>::max()));
  if (object.contains("seed"))
    spec.sampling.seed = static_cast<uint64_t>(
        integer_field(object, "seed", line_number, 0, std::numeric_limits<int64_t>::max()));
  try {
    spec.sampling.validate();
  } catch (const InputError& e) {
    throw InputError(fmt::format("line {}: {}", line_number, e.what()));
  }
  spec.stop = object.contains("stop") ? stop_field(object["stop"], line_number) : defaults.stop;
  spec.ignore_eos = defaults.ignore_eos;
  spec.policy = defaults.policy;
  // Checked by the engine when the request is submitted: an unknown name fails this request only.
  if (object.contains("policy")) {
    const json& value = object["policy"];
    if (!value.is_string() || value.get_ref<const std::string&>().empty())
      fail(line_number, "policy", "a pruning policy spec such as \"dbudget\" or \"snapkv:0.5\"", value);
    spec.policy = value.get<std::string>();
  }
  return spec;
}

std::vector<ParsedLine> read_request_lines(std::istream& in, const RequestDefaults& defaults) {
  std::vector<ParsedLine> lines;
  std::string text;
  for (size_t line_number = 1; std::getline(in, text); ++line_number) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (is_blank_line(text)) continue;
    lines.push_back(parse_request_record(text, line_number, defaults));
  }
  return lines;
}

bool is_blank_line(std::string_view text) { return text.find_first_not_of(" \t\r") == std::string_view::npos; }

ParsedLine parse_request_record(std::string_view text, size_t line_number, const RequestDefaults& defaults) {
  ParsedLine parsed;
  parsed.line_number = line_number;
  try {
    parsed.spec = parse_request_line(text, line_number, defaults);
  } catch (const InputError& e) {
    parsed.error = e.what();
  }
  // The id to echo, even for a bad line whose JSON parsed.
  const json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  parsed.id = line_id(object, line_number);
  return parsed;
}

std::vector<ParsedLine> read_request_file(const std::string& path, const RequestDefaults& defaults) {
  if (path == "-") return read_request_lines(std::cin, defaults);
  std::error_code ec;
  std::ifstream in(path);
  // A folder opens as an empty stream on Linux: it would read as a file with no requests.
  if (!in || std::filesystem::is_directory(path, ec))
    throw InputError(
        fmt::format("--input: cannot open \"{}\": expected a readable JSONL file or - for stdin", path));
  std::vector<ParsedLine> lines = read_request_lines(in, defaults);
  if (in.bad()) throw InputError(fmt::format("--input \"{}\": read failed", path));
  return lines;
}

std::vector<RequestSpec> read_all_requests(const std::string& path, const RequestDefaults& defaults) {
  std::vector<RequestSpec> specs;
  size_t own_policies = 0;
  for (auto& line : read_request_file(path, defaults)) {
    if (!line.spec) throw InputError(fmt::format("--input {}: {}", path, line.error));
    // These runs put every request under each policy they compare: a line's own would skew one.
    if (line.spec->policy != defaults.policy) {
      line.spec->policy = defaults.policy;
      ++own_policies;
    }
    specs.push_back(std::move(*line.spec));
  }
  if (specs.empty()) throw InputError(fmt::format("--input {}: expected at least one request, found none", path));
  if (own_policies != 0)
    log::get("cli")->warn("--input {}: {} requests name a \"policy\" of their own, ignored here: each policy "
                          "this run compares applies to every request",
                          path, own_policies);
  return specs;
}

nlohmann::ordered_json output_record(const json& id, const RequestOutput& output) {
  if (output.finish_reason == FinishReason::kError) return error_record(id, output.error);
  if (output.finish_reason == FinishReason::kCancelled) return error_record(id, "cancelled");
  return nlohmann::ordered_json{{"id", id},
                                {"text", output.text},
                                {"output_tokens", output.output_tokens},
                                {"num_prompt_tokens", output.num_prompt_tokens},
                                {"finish_reason", std::string(to_string(output.finish_reason))},
                                {"kv_kept_fraction", output.kv_kept_fraction},
                                {"ttft_ms", output.ttft * 1e3}};
}

nlohmann::ordered_json error_record(const json& id, std::string_view message) {
  return nlohmann::ordered_json{{"id", id}, {"error", message}};
}

JsonlWriter::JsonlWriter(const std::string& path, OutputFile::Mode mode) : out_(path, "--output", mode) {}

void JsonlWriter::write(const nlohmann::ordered_json& record) {
  // Invalid UTF-8 in generated text (a byte token cut mid-character) is replaced, not fatal.
  out_.write(record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + '\n');
}

void JsonlWriter::flush() { out_.flush(); }

void JsonlWriter::commit() { out_.commit(); }

}  // namespace prunekv
