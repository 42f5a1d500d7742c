// libFuzzer target: a JSONL request file through read_request_lines (bounded line reads, the
// per-line parser, unknown-field and repeated-id warnings), lenient and --strict, and each bad
// line's error record written as JsonlWriter writes it. A bad line must become that line's
// error; an exception or a crash is a finding.
#include <cstdint>
#include <sstream>
#include <string>

#include "scheduler/jsonl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  for (const bool strict : {false, true}) {
    // A small line bound, so the fuzzer reaches the too-long path.
    const prunekv::ReadOptions options{.strict = strict, .max_line_bytes = 512};
    std::istringstream in(input);
    for (const auto& line : prunekv::read_request_lines(in, prunekv::RequestDefaults{}, options)) {
      if (line.spec) continue;
      (void)prunekv::error_record(line.id, line.error)
          .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    }
  }
  return 0;
}
