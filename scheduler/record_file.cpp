#include "scheduler/record_file.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace prunekv {

RecordFile read_record_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot open the results file \"{}\"", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  RecordFile file;
  file.file_bytes = text.size();
  for (size_t begin = 0, end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) {
    file.lines.push_back(text.substr(begin, end - begin));
    file.complete_bytes = end + 1;
  }
  return file;
}

}  // namespace prunekv
