#include "scheduler/jsonl.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "common/log.h"
#include "common/text.h"
#include "scheduler/json_fields.h"

namespace prunekv {
namespace {

using nlohmann::json;

// The id to echo: the line's own when it is a string or an integer, else "line-N" (a string, so
// it never collides with a user's integer id).
json line_id(const json& object, size_t line_number) {
  if (object.is_object() && object.contains("id") &&
      (object["id"].is_string() || object["id"].is_number_integer()))
    return object["id"];
  return fmt::format("line-{}", line_number);
}

std::string id_text(const json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

// A request's fields, then those of our own result and golden records (a golden file is input).
constexpr std::string_view kRequestFields[] = {"id",    "prompt", "prompt_tokens", "max_tokens", "temperature",
                                               "top_p", "top_k",  "seed",          "stop",       "policy"};
constexpr std::string_view kRecordFields[] = {"text",     "output_tokens", "output_text", "num_prompt_tokens",
                                              "finish_reason", "kv_kept_fraction", "ttft_ms", "error"};

bool is_known_field(std::string_view name) {
  const auto is = [&](std::string_view known) { return known == name; };
  return std::ranges::any_of(kRequestFields, is) || std::ranges::any_of(kRecordFields, is);
}

// "unknown field \"max_token\" (did you mean \"max_tokens\"?)": the nearest request field within
// two edits, as a typo usually is.
std::string unknown_field_message(std::string_view name) {
  std::string_view nearest;
  size_t best = 3;
  for (std::string_view known : kRequestFields)
    if (const size_t d = edit_distance(name, known); d < best) best = d, nearest = known;
  std::string message = fmt::format("unknown field \"{}\"", clip_text(name, 40));
  if (!nearest.empty()) message += fmt::format(" (did you mean \"{}\"?)", nearest);
  return message;
}

json parse_object(std::string_view line, size_t line_number) {
  json object;
  try {
    object = json::parse(line);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw InputError(fmt::format("line {}: malformed JSON: {}", line_number, e.what()));
  }
  if (!object.is_object())
    throw InputError(fmt::format("line {}: expected a JSON object, found {}", line_number, describe_json(object)));
  return object;
}

}  // namespace

RequestSpec RequestDefaults::spec() const {
  RequestSpec spec;
  spec.max_tokens = max_tokens;
  spec.sampling = sampling;
  spec.stop = stop;
  spec.ignore_eos = ignore_eos;
  spec.policy = policy;
  return spec;
}

RequestSpec parse_request_object(const json& object, size_t line_number, const RequestDefaults& defaults,
                                 const ReadOptions& options) {
  if (options.strict)
    for (const auto& [name, value] : object.items())
      if (!is_known_field(name))
        throw InputError(fmt::format("line {}: {}: not a request field (--strict)", line_number,
                                     unknown_field_message(name)));

  RequestSpec spec = defaults.spec();
  try {
    if (object.contains("id") && !object["id"].is_string() && !object["id"].is_number_integer())
      fail_field("id", "a string or an integer", object["id"]);
    spec.id = id_text(line_id(object, line_number));
    // prompt_tokens wins when both are present: the ids are exact, the text must be re-encoded.
    if (object.contains("prompt_tokens")) {
      spec.prompt_tokens = token_ids_field(object["prompt_tokens"], "prompt_tokens");
    } else if (object.contains("prompt")) {
      if (!object["prompt"].is_string()) fail_field("prompt", "a string", object["prompt"]);
      spec.prompt = object["prompt"].get<std::string>();
    } else {
      throw InputError("missing prompt: expected a \"prompt\" string or a \"prompt_tokens\" array");
    }
    for (const auto& [key, value] : object.items()) read_sampling_field(key, value, spec, SamplingFieldRules{});
    spec.sampling.validate();
  } catch (const InputError& e) {
    throw InputError(fmt::format("line {}: {}", line_number, e.what()));
  }
  return spec;
}

bool read_bounded_line(std::istream& in, std::string& text, size_t max_bytes, bool& too_long) {
  text.clear();
  too_long = false;
  std::streambuf* buffer = in.rdbuf();
  bool any = false;
  for (int c = buffer->sbumpc(); c != std::char_traits<char>::eof(); c = buffer->sbumpc()) {
    any = true;
    if (c == '\n') return true;
    if (text.size() < max_bytes)
      text.push_back(static_cast<char>(c));
    else
      too_long = true;
  }
  in.setstate(std::ios::eofbit);
  return any;
}

RequestSpec parse_request_line(std::string_view line, size_t line_number, const RequestDefaults& defaults,
                               const ReadOptions& options) {
  return parse_request_object(parse_object(line, line_number), line_number, defaults, options);
}

bool is_blank_line(std::string_view text) { return text.find_first_not_of(" \t\r") == std::string_view::npos; }

RequestLineParser::RequestLineParser(ReadOptions options) : options_(options) {}

ParsedLine RequestLineParser::parse(std::string_view text, size_t line_number, bool too_long,
                                    const RequestDefaults& defaults) {
  auto log = log::get("cli");
  ParsedLine parsed;
  parsed.line_number = line_number;
  parsed.id = line_id(json(), line_number);
  try {
    if (too_long)
      throw InputError(fmt::format("line {}: longer than --max-line-bytes = {} bytes: {}", line_number,
                                   options_.max_line_bytes, clip_text(text, kMaxQuotedBytes)));
    const json object = parse_object(text, line_number);
    parsed.id = line_id(object, line_number);  // the id to echo, even for a bad line whose JSON parsed
    if (object.is_object() && !options_.strict)
      for (const auto& [name, value] : object.items())
        if (!is_known_field(name) && warned_fields_.insert(name).second)
          log->warn("line {}: {}, ignored (one warning per field name; --strict makes it an error)", line_number,
                    unknown_field_message(name));
    parsed.spec = parse_request_object(object, line_number, defaults, options_);
  } catch (const InputError& e) {
    parsed.error = clip_text(e.what(), kMaxQuotedBytes);
  }
  note_id(parsed.id, line_number);
  return parsed;
}

void RequestLineParser::note_id(const nlohmann::json& id, size_t line_number) {
  const std::string text = id_text(id);
  if (const auto [it, first] = first_line_of_id_.emplace(text, line_number); !first)
    log::get("cli")->warn("line {}: id \"{}\" repeats the id of line {}", line_number, clip_text(text, 80),
                          it->second);
}

std::vector<ParsedLine> read_request_lines(std::istream& in, const RequestDefaults& defaults,
                                           const ReadOptions& options) {
  RequestLineParser parser(options);
  std::vector<ParsedLine> lines;
  std::string text;
  bool too_long = false;
  for (size_t line_number = 1; read_bounded_line(in, text, options.max_line_bytes, too_long); ++line_number) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (!too_long && is_blank_line(text)) continue;
    lines.push_back(parser.parse(text, line_number, too_long, defaults));
  }
  return lines;
}

void read_input_file(const std::string& path, const std::function<void(std::istream&)>& read) {
  if (path == "-") return read(std::cin);
  std::error_code ec;
  std::ifstream in(path);
  // A folder opens as an empty stream on Linux: it would read as a file with no requests.
  if (!in || std::filesystem::is_directory(path, ec))
    throw InputError(
        fmt::format("--input: cannot open \"{}\": expected a readable JSONL file or - for stdin", path));
  read(in);
  if (in.bad()) throw InputError(fmt::format("--input \"{}\": read failed", path));
}

std::vector<ParsedLine> read_request_file(const std::string& path, const RequestDefaults& defaults,
                                          const ReadOptions& options) {
  std::vector<ParsedLine> lines;
  read_input_file(path, [&](std::istream& in) { lines = read_request_lines(in, defaults, options); });
  return lines;
}

std::vector<RequestSpec> read_all_requests(const std::string& path, const RequestDefaults& defaults,
                                           const ReadOptions& options) {
  std::vector<RequestSpec> specs;
  size_t own_policies = 0;
  for (auto& line : read_request_file(path, defaults, options)) {
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

nlohmann::ordered_json output_record(const json& id, const RequestOutput& output, std::string_view policy) {
  if (output.finish_reason == FinishReason::kError) return error_record(id, output.error);
  if (output.finish_reason == FinishReason::kCancelled) return error_record(id, "cancelled");
  return nlohmann::ordered_json{{"id", id},
                                {"policy", policy},
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
