#pragma once
// Model shapes for the simulator: the hyper-parameters of real models by name (no weights
// needed), or read from the header of a GGUF / llama2.c file without loading its tensors, so
// `prunekv simulate` can size a KV pool for models this machine cannot hold.
#include <string>
#include <string_view>
#include <vector>

#include "memory/kv_layout.h"
#include "model/model_config.h"

namespace prunekv {

// "Llama-3-8B", "Llama-3-70B", "Mistral-7B", "Qwen2.5-7B" (matched case-insensitively).
std::vector<std::string> model_shape_names();

// The shape of a named model, of a synthetic model ("synthetic:stories15M", built through
// load_model), or of a GGUF / llama2.c file when `name_or_path` names an existing file. Throws ConfigError for an unknown name (listing the known ones) and
// FormatError for a file whose header cannot be read.
ModelConfig model_shape(std::string_view name_or_path);

// Reads only the header / metadata of a GGUF or llama2.c checkpoint. Throws FormatError.
ModelConfig read_model_shape_from_file(const std::string& path);

// The KV element type the simulator assumes when none is given: fp16, as serving engines on
// GPUs store KV (prunekv itself computes in fp32 on CPUs).
inline constexpr KvDtype kDefaultSimulatedKvDtype = KvDtype::kF16;

// "fp32"/"f32" or "fp16"/"f16"; throws ConfigError otherwise.
KvDtype parse_kv_dtype(std::string_view text);

}  // namespace prunekv
