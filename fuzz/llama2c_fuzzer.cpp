// libFuzzer target: a llama2.c checkpoint (7 x int32 header, fp32 tensors) through its loader.
// Bad bytes must end in a FormatError; anything else is a finding.
#include <cstdint>

#include "common/error.h"
#include "fuzz/scratch_file.h"
#include "model/llama2c_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static prunekv::fuzz::ScratchFile file("model.bin");
  const std::string& path = file.write(data, size);
  try {
    const auto model = prunekv::detail::load_llama2c_model(path, {});
    // The views lie inside the mapping: read the last element of the first and last tensors and
    // of each norm (a view past the mapping's end faults).
    const auto& c = model->config;
    const size_t matrix_floats = size_t{c.vocab_size} * c.dim;
    volatile float sink = model->token_embedding.f32()[matrix_floats - 1] +
                          model->classifier.f32()[matrix_floats - 1] + model->final_norm[c.dim - 1];
    for (const auto& layer : model->layers) sink = layer.attn_norm[c.dim - 1] + layer.ffn_norm[c.dim - 1];
    (void)sink;
  } catch (const prunekv::FormatError&) {
  }
  return 0;
}
