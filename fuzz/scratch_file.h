#pragma once
// The loaders read files by path, so a fuzz input is written to one file in a private folder
// (nothing else is in it: the llama2.c loader looks beside the model for a tokenizer), and the
// folder is removed when the fuzzer exits.
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace prunekv::fuzz {

class ScratchFile {
 public:
  explicit ScratchFile(const std::string& name) {
    std::string dir = (std::filesystem::temp_directory_path() / "prunekv-fuzz-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) {
      std::perror("prunekv fuzz: mkdtemp");
      std::abort();
    }
    dir_ = dir;
    path_ = (dir_ / name).string();
  }
  ~ScratchFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's bytes; returns its path.
  const std::string& write(const uint8_t* data, size_t size) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) {
      std::perror("prunekv fuzz: writing the scratch file");
      std::abort();
    }
    return path_;
  }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

}  // namespace prunekv::fuzz
