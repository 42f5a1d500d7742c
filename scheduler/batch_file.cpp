#include "scheduler/batch_file.h"

#include <fmt/format.h>

#include <istream>

#include "common/error.h"
#include "scheduler/openai_batch.h"

namespace prunekv {

using nlohmann::json;

std::string_view to_string(BatchFormat format) {
  return format == BatchFormat::kOpenAiBatch ? "openai-batch" : "prunekv";
}

BatchFormat batch_format_from_string(std::string_view name) {
  if (name == "prunekv") return BatchFormat::kPrunekv;
  if (name == "openai-batch") return BatchFormat::kOpenAiBatch;
  throw InputError(fmt::format("unknown batch format \"{}\": expected \"prunekv\" or \"openai-batch\"", name));
}

BatchInput read_batch_text(std::istream& in, const RequestDefaults& defaults, const ReadOptions& options) {
  struct Line {
    size_t number;
    std::string text;
    bool too_long;
  };
  std::vector<Line> lines;
  std::string text;
  bool too_long = false;
  for (size_t line_number = 1; read_bounded_line(in, text, options.max_line_bytes, too_long); ++line_number) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (too_long || !is_blank_line(text)) lines.push_back({line_number, std::move(text), too_long});
  }

  // The first line that is a JSON object decides; a file of nothing but broken lines is
  // prunekv's own (each line then says what is wrong with it).
  BatchInput input;
  size_t detected_from = 0;
  for (const Line& line : lines) {
    const json object = json::parse(line.text, nullptr, /*allow_exceptions=*/false);
    if (!object.is_object()) continue;
    input.format = looks_like_openai_batch_line(object) ? BatchFormat::kOpenAiBatch : BatchFormat::kPrunekv;
    detected_from = line.number;
    break;
  }

  RequestLineParser parser(options);
  for (const Line& line : lines) {
    const json object = json::parse(line.text, nullptr, /*allow_exceptions=*/false);
    const bool other_format = input.format == BatchFormat::kPrunekv && looks_like_openai_batch_line(object);
    ParsedLine parsed;
    if (input.format == BatchFormat::kPrunekv) {
      parsed = parser.parse(line.text, line.number, line.too_long, defaults);
    } else if (line.too_long) {
      parsed = parser.parse(line.text, line.number, true, defaults);  // the length error, whatever the format
    } else {
      parsed = parse_openai_batch_line(line.text, line.number, defaults);
      parser.note_id(parsed.id, line.number);
    }
    if (other_format) {
      parsed.spec.reset();
      parsed.error = fmt::format(
          "line {}: an OpenAI Batch line in a prunekv JSONL file (format detected from line {}): one "
          "format per file",
          line.number, detected_from);
    }
    input.lines.push_back(std::move(parsed));
  }
  return input;
}

BatchInput read_batch_file(const std::string& path, const RequestDefaults& defaults, const ReadOptions& options) {
  BatchInput input;
  read_input_file(path, [&](std::istream& in) { input = read_batch_text(in, defaults, options); });
  return input;
}

nlohmann::ordered_json batch_output_record(BatchFormat format, const json& id, const RequestOutput& output,
                                           std::string_view model, std::string_view policy) {
  if (format == BatchFormat::kPrunekv) return output_record(id, output, policy);
  nlohmann::ordered_json record = openai_batch_output_record(id, output, model);
  if (record["response"].is_object()) record["response"]["body"]["policy"] = policy;
  return record;
}

nlohmann::ordered_json batch_error_record(BatchFormat format, const json& id, std::string_view message) {
  return format == BatchFormat::kOpenAiBatch ? openai_batch_error_record(id, message) : error_record(id, message);
}

json record_id(BatchFormat format, const json& record) {
  const char* key = format == BatchFormat::kOpenAiBatch ? "custom_id" : "id";
  return record.is_object() && record.contains(key) ? record[key] : json();
}

bool is_error_record(BatchFormat format, const json& record) {
  if (!record.is_object() || !record.contains("error")) return false;
  return format == BatchFormat::kPrunekv || !record["error"].is_null();
}

}  // namespace prunekv
