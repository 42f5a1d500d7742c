#pragma once
// GGUF models of architecture "llama" (llama.cpp's format): config and vocabulary from the
// metadata, F32 tensors as views into the memory map, F16/BF16/Q8_0 converted to fp32 at load.
#include <memory>
#include <string>

#include "model/model.h"

namespace prunekv::detail {

// Throws FormatError naming the file, the field or tensor, the expected and found values.
std::unique_ptr<Model> load_gguf_model(const std::string& path, const LoadOptions& options);

}  // namespace prunekv::detail
