#pragma once
// model/: the LLaMA-architecture decoder: loaders (GGUF, llama2.c, synthetic), tokenizer, the
// batched forward step over paged KV, sampler. Uses common and memory; never policies.
//
// A loaded model: config, weight views in the file's [out][in] layout and the file's own type
// (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K: nothing is widened at load; the Transformer repacks
// all-F32 products once for its GEMM kernel, model/packed_model.h, and computes on the others
// in place, model/quant_matmul.h), the tokenizer, and the storage keeping the views alive (a
// memory map, owned buffers for synthetic weights and converted norm vectors).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "model/model_config.h"
#include "model/tokenizer.h"
#include "model/weight_view.h"

namespace prunekv {

struct PackedModel;  // model/packed_model.h
class MappedFile;   // model/mapped_file.h

// Row-major [out][in] matrices (y = W x) in their file's type; norm vectors fp32.
struct LayerWeights {
  const float* attn_norm = nullptr;  // [dim]
  WeightView wq;                     // [dim][dim]
  WeightView wk;                     // [kv_dim][dim]
  WeightView wv;                     // [kv_dim][dim]
  WeightView wo;                     // [dim][dim]
  const float* ffn_norm = nullptr;   // [dim]
  WeightView w1;                     // gate [hidden][dim]
  WeightView w2;                     // down [dim][hidden]
  WeightView w3;                     // up   [hidden][dim]
};

struct Model {
  ModelConfig config;
  WeightView token_embedding;              // [vocab][dim]
  std::vector<LayerWeights> layers;
  const float* final_norm = nullptr;       // [dim]
  WeightView classifier;                   // [vocab][dim]; == token_embedding when tied
  std::optional<Tokenizer> tokenizer;      // absent for synthetic models without --tokenizer
  // Why a file that names a tokenizer has none here ("tokenizer.ggml.model = 'gpt2' is not
  // supported ..."): text requests are refused up front with it. Empty otherwise.
  std::string unusable_tokenizer;
  // GGUF tokenizer.chat_template: the Jinja text that turns chat messages into a prompt
  // (model/chat_template.h recognises the common ones). Empty when the file has none.
  std::string chat_template;
  TokenId bos_id = 1;
  TokenId eos_id = 2;
  // Tokens that end a generation: EOS, and BOS (llama2.c models emit BOS between stories).
  std::vector<TokenId> stop_tokens;
  // Where the weights came from, for logs and reports: "llama2.c fp32", "GGUF v3 F16", "synthetic".
  std::string file_type;
  // The matrices' types and bytes, for logs and reports: "Q4_K 61.2 MiB, Q6_K 12.0 MiB, F32 0.1 MiB".
  std::string weight_summary() const;

  // Keeps the weight views valid: a memory map and/or owned buffers.
  std::vector<std::shared_ptr<const void>> storage;
  // The file the views point into, when the loader mapped one (not for synthetic models): where
  // packing releases the pages of the weights it copied.
  std::shared_ptr<const MappedFile> mapped_file;

  // The weights repacked for the GEMM kernel: a cache that packed_weights() (model/packed_model.h)
  // fills on first use, under its lock; null until a Transformer is built over this model. The
  // weights behind the views must not change after that (the copy would not follow).
  mutable std::shared_ptr<const PackedModel> packed;
};

struct LoadOptions {
  std::string tokenizer_path;        // llama2.c tokenizer.bin; GGUF carries its own
  uint32_t context_length = 0;       // override (synthetic models; 0 = the model's own)
  uint64_t seed = 1234;              // synthetic weights
};

// `spec` is a GGUF file (by magic), a llama2.c checkpoint, or "synthetic:NAME" with NAME one of
// synthetic_model_names(). Throws FormatError / ConfigError with the file, field, expected and
// found value.
std::unique_ptr<Model> load_model(std::string_view spec, const LoadOptions& options = {});

std::vector<std::string> synthetic_model_names();

}  // namespace prunekv
