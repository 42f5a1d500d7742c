// Serves two token prompts on a synthetic model through the installed offline API and checks
// that each gets exactly the tokens it asked for. Exit code 0 = the package works.
#include <cstdio>
#include <vector>

#include "model/model.h"
#include "scheduler/engine.h"
#include "scheduler/transformer_runner.h"

int main() {
  const auto model = prunekv::load_model("synthetic:stories260K");
  prunekv::TransformerRunner runner(*model, 1);

  prunekv::EngineConfig config;
  config.num_kv_blocks = 1024;
  config.default_policy = "dbudget";

  std::vector<prunekv::RequestSpec> specs(2);
  specs[0].prompt_tokens = {1, 10, 20, 30, 40, 50};
  specs[1].prompt_tokens = {1, 7, 8, 9};
  for (auto& spec : specs) {
    spec.max_tokens = 5;
    spec.ignore_eos = true;
  }
  const std::vector<prunekv::RequestOutput> outputs = prunekv::generate(runner, config, specs);

  if (outputs.size() != specs.size()) {
    std::fprintf(stderr, "consumer: expected %zu outputs, got %zu\n", specs.size(), outputs.size());
    return 1;
  }
  for (const auto& out : outputs) {
    if (out.output_tokens.size() != 5 || !out.finished()) {
      std::fprintf(stderr, "consumer: request %s: expected 5 tokens, got %zu (%s)\n", out.id.c_str(),
                   out.output_tokens.size(), out.error.c_str());
      return 1;
    }
  }
  std::printf("consumer: %zu requests served, 5 tokens each\n", outputs.size());
  return 0;
}
