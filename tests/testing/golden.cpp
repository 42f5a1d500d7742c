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

}  // namespace prunekv::testing
