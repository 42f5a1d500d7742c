// libFuzzer target: a llama2.c tokenizer.bin through both readers (the entry count, then the
// tokenizer with that many entries), then encode / decode over it. Bad bytes must end in a
// FormatError; anything else is a finding.
#include <cstdint>

#include "common/error.h"
#include "fuzz/exercise_tokenizer.h"
#include "fuzz/scratch_file.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static prunekv::fuzz::ScratchFile file("tokenizer.bin");
  const std::string& path = file.write(data, size);
  try {
    const size_t vocab = prunekv::Tokenizer::llama2c_file_vocab_size(path);
    const auto tokenizer = prunekv::Tokenizer::from_llama2c_file(path, static_cast<uint32_t>(vocab));
    prunekv::fuzz::exercise_tokenizer(tokenizer, data, size);
  } catch (const prunekv::FormatError&) {
  }
  return 0;
}
