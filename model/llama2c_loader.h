#pragma once
// llama2.c checkpoints: the legacy "version 0" .bin (7 x int32 header, fp32 tensors in run.c's
// order) and the tokenizer.bin that goes beside it. Weights are views into a memory map.
#include <memory>
#include <optional>
#include <string>

#include "model/model.h"

namespace prunekv::detail {

// Loads `path`; throws FormatError naming the file, the field, the expected and found values.
std::unique_ptr<Model> load_llama2c_model(const std::string& path, const LoadOptions& options);

// The tokenizer for a llama2.c model: `options.tokenizer_path` when set (it must hold exactly
// vocab_size entries), else tok<vocab>.bin or tokenizer.bin beside the model if its vocabulary
// size matches, else none.
std::optional<Tokenizer> find_llama2c_tokenizer(const std::string& model_path, uint32_t vocab_size,
                                                const LoadOptions& options);

}  // namespace prunekv::detail
