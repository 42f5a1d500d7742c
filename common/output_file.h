#pragma once
// Results are never lost without an error. Every file a command writes goes through OutputFile:
// each write and the close are checked, and a regular file is written as a temporary file in the
// same folder, renamed over the target only once all of it is on disk, so a failed run never
// leaves a half file under the final name. "-" is stdout; devices and FIFOs (/dev/full,
// /dev/stdout, a pipe) are written in place, since they cannot be renamed over.
#include <cstdio>
#include <string>
#include <string_view>

namespace prunekv {

class OutputFile {
 public:
  // kReplace: the temporary-and-rename above. kInPlace (truncated first) and kAppend (after what
  // the file holds): written under the final name as they go, for a resumable run whose records
  // must survive a crash (a shard's manifest, not the rename, then says the file is whole).
  enum class Mode { kReplace, kInPlace, kAppend };
  // `what` names the file in errors, e.g. "--output" or "--plot". Throws Error when the file
  // (or its temporary) cannot be created.
  OutputFile(std::string path, std::string what, Mode mode = Mode::kReplace);
  // Without commit(): the temporary file is removed and the target is left as it was.
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Throw Error naming the file and the system's reason when the bytes cannot be written.
  void write(std::string_view bytes);
  void flush();
  // Flushes, closes and renames into place; throws Error on any failure (the temporary is removed).
  void commit();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(std::string_view action, int error_number);

  std::string path_, what_;
  std::string temp_path_;  // empty when written in place
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// The whole of `contents` into `path`, with OutputFile's checks and rename.
void write_output_file(const std::string& path, std::string_view what, std::string_view contents);

// Flushes stdout; throws Error when anything written to it was lost (stdout on a full disk).
void check_stdout();

}  // namespace prunekv
