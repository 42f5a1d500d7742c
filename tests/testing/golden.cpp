#include "tests/testing/golden.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/testing/model_paths.h"

namespace prunekv::testing {

std::vector<GoldenCase> load_golden() {
  std::vector<GoldenCase> cases;
  std::ifstream in(golden_path());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    GoldenCase c;
    c.id = j.at("id").get<std::string>();
    c.prompt = j.at("prompt").get<std::string>();
    c.prompt_tokens = j.at("prompt_tokens").get<std::vector<TokenId>>();
    c.max_tokens = j.at("max_tokens").get<int>();
    c.output_tokens = j.at("output_tokens").get<std::vector<TokenId>>();
    c.finish_reason = j.at("finish_reason").get<std::string>();
    c.output_text = j.at("output_text").get<std::string>();
    cases.push_back(std::move(c));
  }
  return cases;
}

std::unique_ptr<Model> load_golden_model() {
  LoadOptions options;
  options.tokenizer_path = model_path("tok512.bin");
  return load_model(model_path("stories260K.bin"), options);
}

std::vector<RequestSpec> golden_specs(const std::vector<GoldenCase>& cases) {
  std::vector<RequestSpec> specs;
  for (const GoldenCase& c : cases) {
    RequestSpec spec;
    spec.id = c.id;
    spec.prompt_tokens = c.prompt_tokens;
    spec.max_tokens = static_cast<uint32_t>(c.max_tokens);
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace prunekv::testing
