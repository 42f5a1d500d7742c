#pragma once
// A whole file mapped read-only into memory. Loaders hand out weight views into it and keep it
// alive through Model::storage (a shared_ptr), so views stay valid as long as the model lives.
// Immutable after construction: safe to read from any thread.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace prunekv {

class MappedFile {
 public:
  // Maps `path` read-only. Throws FormatError if it cannot be opened or mapped (an empty file
  // maps to an empty span).
  static std::shared_ptr<const MappedFile> open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  // Drops this process's resident pages that lie wholly inside [begin, begin + bytes) and inside
  // the map (madvise MADV_DONTNEED): for weights copied elsewhere (the GEMM's panels), so that a
  // model is not resident twice. A later read of those bytes faults them back in from the file.
  void release_pages(const void* begin, size_t bytes) const;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size);

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace prunekv
