#pragma once
// GGUF models of architecture "llama" (llama.cpp's format): config and vocabulary from the
// metadata, every weight matrix a view into the memory map in the file's own type (F32, F16,
// BF16, Q8_0, Q4_0, Q4_K, Q6_K); only the small norm vectors are converted to fp32.
#include <memory>
#include <string>

#include "model/model.h"

namespace prunekv::detail {

// Throws FormatError naming the file, the field or tensor, the expected and found values.
std::unique_ptr<Model> load_gguf_model(const std::string& path, const LoadOptions& options);

}  // namespace prunekv::detail
