// libFuzzer target: a GGUF file through the whole GGUF model load (header, metadata, tensor
// table, the "llama" model's tensors and its SentencePiece vocabulary), then that tokenizer.
// Bad bytes must end in a FormatError; anything else (a crash, a sanitizer report, another
// exception, a leak) is a finding.
#include <cstdint>

#include "common/error.h"
#include "fuzz/exercise_tokenizer.h"
#include "fuzz/scratch_file.h"
#include "model/gguf_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static prunekv::fuzz::ScratchFile file("model.gguf");
  const std::string& path = file.write(data, size);
  try {
    const auto model = prunekv::detail::load_gguf_model(path, {});
    if (model->tokenizer) prunekv::fuzz::exercise_tokenizer(*model->tokenizer, data, size);
  } catch (const prunekv::FormatError&) {
  }
  return 0;
}
