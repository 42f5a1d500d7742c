#include "model/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "common/error.h"

namespace prunekv {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    throw FormatError(fmt::format("{}: expected a regular file{}", path,
                                  err != 0 ? fmt::format(" ({})", std::strerror(err)) : ""));
  }
  const auto size = static_cast<size_t>(st.st_size);
  const uint8_t* data = nullptr;
  // mmap rejects length 0; an empty file is simply an empty span (loaders report it truncated).
  if (size > 0) {
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw FormatError(fmt::format("{}: cannot memory-map {} bytes: {}", path, size, std::strerror(err)));
    }
    data = static_cast<const uint8_t*>(mapped);
  }
  ::close(fd);  // the mapping keeps its own reference to the file
  return std::shared_ptr<const MappedFile>(new MappedFile(path, data, size));
}

MappedFile::MappedFile(std::string path, const uint8_t* data, size_t size)
    : path_(std::move(path)), data_(data), size_(size) {}

void MappedFile::release_pages(const void* begin, size_t bytes) const {
  static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto map_begin = reinterpret_cast<uintptr_t>(data_), map_end = map_begin + size_;
  const auto b = std::max(reinterpret_cast<uintptr_t>(begin), map_begin);
  const auto e = std::min(reinterpret_cast<uintptr_t>(begin) + bytes, map_end);
  const uintptr_t first = (b + page - 1) / page * page, last = e / page * page;  // whole pages only
  if (data_ == nullptr || first >= last) return;
  // Advice, not a correctness matter: on failure the pages simply stay resident.
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace prunekv
