#pragma once
// The complete records of a results file: lines ending in '\n'. A process killed mid-write can
// leave a partial last line; it is not a record, and --resume cuts it off.
#include <cstdint>
#include <string>
#include <vector>

namespace prunekv {

struct RecordFile {
  std::vector<std::string> lines;  // complete lines, without their '\n'
  uint64_t complete_bytes = 0;     // bytes up to and including the last '\n'
  uint64_t file_bytes = 0;         // > complete_bytes when a partial line follows
};

// Throws InputError naming the path when it cannot be read.
RecordFile read_record_file(const std::string& path);

}  // namespace prunekv
