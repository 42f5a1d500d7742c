#pragma once
// The 60 golden prompts of ../shared/golden (llama2.c run.c greedy outputs, full fp32 cache).
#include <string>
#include <vector>

#include "common/ids.h"

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

}  // namespace prunekv::testing
