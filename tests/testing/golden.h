#pragma once
// The 60 golden prompts of ../shared/golden (llama2.c run.c greedy outputs, full fp32 cache).
#include <memory>
#include <string>
#include <vector>

#include "common/ids.h"
#include "model/model.h"
#include "scheduler/request.h"

namespace prunekv::testing {

struct GoldenCase {
  std::string id;
  std::string prompt;
  std::vector<TokenId> prompt_tokens;
  int max_tokens = 0;
  std::vector<TokenId> output_tokens;
  std::string finish_reason;
  std::string output_text;
};

// Reads every line of the golden file; empty when it is absent.
std::vector<GoldenCase> load_golden();

// The model the golden outputs come from: stories260K.bin with tok512.bin (callers check both
// files with PKV_REQUIRE_SHARED_FILE first).
std::unique_ptr<Model> load_golden_model();

// One request per case, as the golden file was made: its prompt tokens and max_tokens, greedy,
// stopping on BOS/EOS, the engine's default policy.
std::vector<RequestSpec> golden_specs(const std::vector<GoldenCase>& cases);

}  // namespace prunekv::testing
