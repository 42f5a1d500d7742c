#pragma once
// A batch input file in either format prunekv reads: its own JSONL (scheduler/jsonl.h) or
// OpenAI's Batch format (scheduler/openai_batch.h). The format is detected per file, from the
// first line that is a JSON object, and the results are written in the same format. A line in
// neither format (or in the other one) becomes an error record for that line alone.
// Line indices count the non-blank lines from 0: sharding and merging speak of them.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/jsonl.h"
#include "scheduler/request.h"

namespace prunekv {

enum class BatchFormat { kPrunekv, kOpenAiBatch };
// "prunekv", "openai-batch".
std::string_view to_string(BatchFormat format);
// The inverse; throws InputError for another name.
BatchFormat batch_format_from_string(std::string_view name);

struct BatchInput {
  BatchFormat format = BatchFormat::kPrunekv;
  std::vector<ParsedLine> lines;  // one per non-blank line, in file order
};

// Reads a file, or stdin when path is "-". Throws InputError when it cannot be opened.
// Lines are read as scheduler/jsonl.h's RequestLineParser reads them (bounded length, unknown
// fields, repeated ids). Throws InputError when it cannot be opened or is a folder.
BatchInput read_batch_file(const std::string& path, const RequestDefaults& defaults,
                           const ReadOptions& options = {});
// The same over text already read (tests, and merge).
BatchInput read_batch_text(std::istream& in, const RequestDefaults& defaults, const ReadOptions& options = {});

// The record for a served request or for a line that could not be served, in `format`.
// `model` names the model in OpenAI output bodies; `policy` the pruning policy that served it
// (a field of prunekv's records, of the response body in OpenAI's).
nlohmann::ordered_json batch_output_record(BatchFormat format, const nlohmann::json& id,
                                           const RequestOutput& output, std::string_view model,
                                           std::string_view policy);
nlohmann::ordered_json batch_error_record(BatchFormat format, const nlohmann::json& id, std::string_view message);

// The id a written record echoes ("id" in prunekv's format, "custom_id" in OpenAI's); null when
// the record has none.
nlohmann::json record_id(BatchFormat format, const nlohmann::json& record);
// True for an error record (prunekv: has "error"; OpenAI: "error" is not null).
bool is_error_record(BatchFormat format, const nlohmann::json& record);

}  // namespace prunekv
