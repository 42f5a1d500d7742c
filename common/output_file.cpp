#include "common/output_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace prunekv {
namespace {

// Only a regular file (or a path not there yet) is replaced by rename; a symlink, device or FIFO
// is written through, as `sort -o` does.
bool replace_by_rename(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT;
  return S_ISREG(st.st_mode);
}

// A name beside `path` that no other writer in this process or another one picks.
std::string temp_name(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
}

}  // namespace

OutputFile::OutputFile(std::string path, std::string what, Mode mode)
    : path_(std::move(path)), what_(std::move(what)) {
  if (path_ == "-") {
    file_ = stdout;
    return;
  }
  int fd = -1;
  if (mode == Mode::kAppend) {
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  } else if (mode == Mode::kReplace && replace_by_rename(path_)) {
    temp_path_ = temp_name(path_);
    // 0666 under the umask, as the target would have had if created directly.
    fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  } else {
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  }
  if (fd < 0) {
    const int err = errno;
    temp_path_.clear();  // nothing to remove
    fail("cannot create it", err);
  }
  file_ = ::fdopen(fd, "w");
  if (file_ == nullptr) {
    const int err = errno;
    ::close(fd);
    fail("cannot create it", err);
  }
}

OutputFile::~OutputFile() {
  if (committed_ || file_ == nullptr) return;
  if (file_ != stdout) std::fclose(file_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void OutputFile::fail(std::string_view action, int error_number) {
  const std::string file = path_ == "-" ? "(stdout)" : fmt::format("\"{}\"", path_);
  const std::string message = fmt::format("{} {}: {}: {}", what_, file, action, std::strerror(error_number));
  if (file_ != nullptr && file_ != stdout) std::fclose(file_);
  file_ = nullptr;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  throw Error(message);
}

void OutputFile::write(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) fail("write failed", errno);
}

void OutputFile::flush() {
  if (std::fflush(file_) != 0 || std::ferror(file_)) fail("write failed", errno ? errno : EIO);
}

void OutputFile::commit() {
  flush();
  if (file_ != stdout) {
    // fsync before rename: after a crash the final name holds all of the data or the old file.
    if (!temp_path_.empty() && ::fsync(::fileno(file_)) != 0 && errno != EINVAL) fail("write failed", errno);
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (closed != 0) fail("close failed", errno);
    if (!temp_path_.empty() && std::rename(temp_path_.c_str(), path_.c_str()) != 0)
      fail(fmt::format("cannot rename \"{}\" into place", temp_path_), errno);
  }
  committed_ = true;
}

void write_output_file(const std::string& path, std::string_view what, std::string_view contents) {
  OutputFile out(path, std::string(what));
  out.write(contents);
  out.commit();
}

void check_stdout() {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    const int err = errno ? errno : EIO;
    std::clearerr(stdout);
    throw Error(fmt::format("stdout: write failed: {}", std::strerror(err)));
  }
}

}  // namespace prunekv
