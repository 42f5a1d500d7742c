#pragma once
// JSONL requests in, JSONL records out, for `prunekv generate` / `eval` / `bench --input`.
// One request per line:
//   {"id": "a" | 7, "prompt": "text" | "prompt_tokens": [1, 2, ...], "max_tokens": N,
//    "temperature": T, "top_p": P, "top_k": K, "seed": S, "stop": "s" | ["s", ...],
//    "policy": "snapkv:0.5"}
// Every field but the prompt is optional; "policy" overrides the engine's default for this
// request. The fields of our own result and golden records ("text", "output_tokens",
// "output_text", "finish_reason", ...) are known too, so a golden file is valid input; any other
// field is warned about once per name (with a near-miss hint), or with ReadOptions::strict is an
// error for its line. A line without an id gets "line-N". A bad line becomes an error for that
// line alone; errors quote at most kMaxQuotedBytes of it.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/output_file.h"
#include "model/sampler.h"
#include "scheduler/request.h"

namespace prunekv {

// Values a line inherits for the fields it does not set.
struct RequestDefaults {
  uint32_t max_tokens = 256;
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  std::string policy;  // empty = the engine's default

  // A request with these values and no prompt yet.
  RequestSpec spec() const;
};

inline constexpr size_t kDefaultMaxLineBytes = size_t{16} << 20;
// An error message quotes at most this much of a bad line (a 100 MB line is not echoed).
inline constexpr size_t kMaxQuotedBytes = 200;

// How a request file is read.
struct ReadOptions {
  bool strict = false;                          // an unknown field is an error for its line
  size_t max_line_bytes = kDefaultMaxLineBytes;  // a longer line is an error for that line
};

struct ParsedLine {
  size_t line_number = 0;           // 1-based physical line in the input
  nlohmann::json id;                // the line's "id" (string or integer), else "line-N"
  std::optional<RequestSpec> spec;  // absent when the line is bad
  std::string error;                // why the line is bad (an InputError message)
};

// Parses one line into a request; spec.id is the id as text. Throws InputError naming the line,
// the field, what was expected and what was found (malformed JSON, no prompt, a wrong type, a
// value out of range).
// With options.strict, an unknown field is an error too.
RequestSpec parse_request_line(std::string_view line, size_t line_number, const RequestDefaults& defaults,
                               const ReadOptions& options = {});

// The same over a parsed JSON value (the body of an OpenAI Batch line goes through here).
RequestSpec parse_request_object(const nlohmann::json& object, size_t line_number, const RequestDefaults& defaults,
                                 const ReadOptions& options = {});
// Spaces, tabs and a CR only: such lines are skipped and are no request.
bool is_blank_line(std::string_view text);
// Reads one line (without its '\n') into `text`; false at the end of the input. A line longer
// than max_bytes is read to its end but only its first max_bytes are kept, with `too_long` set,
// so one huge line cannot take the process's memory.
bool read_bounded_line(std::istream& in, std::string& text, size_t max_bytes, bool& too_long);

// The lines of one request file, parsed in order with the file-wide checks: one warning per
// unknown field name (an error for its line under options.strict) and one per repeated id.
class RequestLineParser {
 public:
  explicit RequestLineParser(ReadOptions options);
  // One non-blank line: its spec, or its error (quoting at most kMaxQuotedBytes) and the id to
  // echo. `too_long`: the line was cut at options.max_line_bytes and is an error.
  ParsedLine parse(std::string_view text, size_t line_number, bool too_long, const RequestDefaults& defaults);
  // Counts an id parsed elsewhere (an OpenAI Batch line's custom_id) towards the repeat warning.
  void note_id(const nlohmann::json& id, size_t line_number);
  const ReadOptions& options() const { return options_; }

 private:
  ReadOptions options_;
  std::unordered_set<std::string> warned_fields_;
  std::unordered_map<std::string, size_t> first_line_of_id_;
};

// Opens `path` (stdin when "-") and hands the stream to `read`. Throws InputError when the file
// cannot be opened, is a folder (which would read as an empty file), or a read fails.
void read_input_file(const std::string& path, const std::function<void(std::istream&)>& read);

// Reads every non-blank line of `in`; bad lines come back with their error instead of a spec.
// Warns once per unknown field name and per duplicate id.
std::vector<ParsedLine> read_request_lines(std::istream& in, const RequestDefaults& defaults,
                                           const ReadOptions& options = {});
// The same for a file, or stdin when path is "-". Throws InputError when the file cannot be
// opened or is a folder.
std::vector<ParsedLine> read_request_file(const std::string& path, const RequestDefaults& defaults,
                                          const ReadOptions& options = {});
// For runs whose figures would mislead over a silently shortened set (bench, eval): every line
// must parse and there must be at least one. Throws InputError naming the file and the line.
// These runs compare policies over the same requests, so a line's own "policy" gives way to
// defaults.policy (with a warning).
std::vector<RequestSpec> read_all_requests(const std::string& path, const RequestDefaults& defaults,
                                           const ReadOptions& options = {});

// The output record of a served request: {"id", "policy", "text", "output_tokens",
// "num_prompt_tokens", "finish_reason", "kv_kept_fraction", "ttft_ms"}, `policy` being the spec
// that served it; an engine error yields error_record().
nlohmann::ordered_json output_record(const nlohmann::json& id, const RequestOutput& output,
                                     std::string_view policy);
// {"id", "error"}.
nlohmann::ordered_json error_record(const nlohmann::json& id, std::string_view message);

// Writes one compact JSON object per line to a file, or stdout when path is "-", through an
// OutputFile: records reach the final name only at commit(); every write is checked.
class JsonlWriter {
 public:
  // Throws Error when the file cannot be created. `mode` kInPlace / kAppend put each record under
  // the final name as it is flushed (a sharded or resumed generate).
  explicit JsonlWriter(const std::string& path, OutputFile::Mode mode = OutputFile::Mode::kReplace);

  void write(const nlohmann::ordered_json& record);
  void flush();
  // Every record is written and the file is in place; throws Error naming the file otherwise.
  void commit();

 private:
  OutputFile out_;
};

}  // namespace prunekv
