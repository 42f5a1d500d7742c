// The subcommands on the real stories260K model against the golden outputs (../shared).
#include <gtest/gtest.h>

#include "tests/cli/cli_test_helpers.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_paths.h"

namespace prunekv::testing {
namespace {

std::vector<std::string> model_flags() {
  return {"--model", model_path("stories260K.bin"), "--tokenizer", model_path("tok512.bin")};
}

std::vector<std::string> with(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// `generate` over the golden file, which is valid input as it is (prompt_tokens + max_tokens;
// other fields ignored), with `flags` added; the records, empty when the command failed.
std::vector<nlohmann::json> generate_golden(const std::vector<std::string>& flags) {
  const std::string output = cli_temp_path("out.jsonl");
  const int rc = run_prunekv(with({"--log-level", "warn", "generate"},
                                  with(model_flags(), with({"--input", golden_path(), "--output", output, "-q"}, flags))));
  EXPECT_EQ(rc, 0);
  return rc == 0 ? read_jsonl_file(output) : std::vector<nlohmann::json>{};
}

TEST(CliGenerateModel, ReproducesTheGoldenTokens) {
  PKV_REQUIRE_SHARED_FILE(model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(golden_path());
  const auto golden = load_golden();
  ASSERT_EQ(golden.size(), 60u);
  const auto records = generate_golden({"--max-num-seqs", "16", "--policy", "full"});
  ASSERT_EQ(records.size(), golden.size());
  for (size_t i = 0; i < golden.size(); ++i) {
    SCOPED_TRACE(golden[i].id);
    EXPECT_EQ(records[i]["id"], golden[i].id);
    ASSERT_FALSE(records[i].contains("error")) << records[i]["error"];
    EXPECT_EQ(records[i]["output_tokens"].get<std::vector<TokenId>>(), golden[i].output_tokens);
    EXPECT_EQ(records[i]["finish_reason"], golden[i].finish_reason);
    EXPECT_EQ(records[i]["num_prompt_tokens"], golden[i].prompt_tokens.size());
    EXPECT_EQ(records[i]["kv_kept_fraction"], 1.0);
  }
}

// generate's default policy, topp, prunes every prompt and still keeps the golden outputs: 59 of
// 60 exact at 0.733 of the prompt entries kept (measured; issue 19).
TEST(CliGenerateModel, TheDefaultPolicyPrunesAndKeepsTheGoldenOutputs) {
  PKV_REQUIRE_SHARED_FILE(model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(golden_path());
  const auto golden = load_golden();
  ASSERT_EQ(golden.size(), 60u);
  const auto records = generate_golden({});
  ASSERT_EQ(records.size(), golden.size());
  size_t exact = 0;
  double kept = 0.0;
  for (size_t i = 0; i < golden.size(); ++i) {
    ASSERT_FALSE(records[i].contains("error")) << records[i]["error"];
    exact += records[i]["output_tokens"].get<std::vector<TokenId>>() == golden[i].output_tokens;
    kept += records[i]["kv_kept_fraction"].get<double>() / double(golden.size());
  }
  EXPECT_GE(exact, 58u);
  EXPECT_LT(kept, 0.8);
}

TEST(CliGenerateModel, TextPromptsAreEncodedAndDecoded) {
  PKV_REQUIRE_SHARED_FILE(model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(golden_path());
  const auto golden = load_golden();
  ASSERT_GE(golden.size(), 3u);
  const std::string input = cli_temp_path("in.jsonl"), output = cli_temp_path("out.jsonl");
  std::string lines;
  for (size_t i = 0; i < 3; ++i)
    lines +=
        nlohmann::json{
            {"id", golden[i].id}, {"prompt", golden[i].prompt}, {"max_tokens", golden[i].max_tokens}}
            .dump() +
        "\n";
  write_text_file(input, lines);
  ASSERT_EQ(run_prunekv(with({"--log-level", "warn", "generate"},
                             with(model_flags(), {"--input", input, "--output", output, "-q"}))),
            0);
  const auto records = read_jsonl_file(output);
  ASSERT_EQ(records.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(golden[i].id);
    EXPECT_EQ(records[i]["output_tokens"].get<std::vector<TokenId>>(), golden[i].output_tokens);
    EXPECT_EQ(records[i]["text"], golden[i].output_text);
  }
}

TEST(CliEvalModel, FullAgreesWithItselfAndPruningKeepsLess) {
  PKV_REQUIRE_SHARED_FILE(model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(golden_path());
  // The first 8 golden prompts.
  const std::string input = cli_temp_path("in.jsonl"), json_path = cli_temp_path("eval.json");
  std::string lines;
  for (const auto& g : load_golden()) {
    if (lines.size() > 0 && std::count(lines.begin(), lines.end(), '\n') == 8) break;
    lines += nlohmann::json{{"id", g.id}, {"prompt_tokens", g.prompt_tokens}, {"max_tokens", g.max_tokens}}
                 .dump() +
             "\n";
  }
  write_text_file(input, lines);
  int rc = -1;
  const std::string table = run_prunekv_stdout(
      with({"--log-level", "warn", "eval"},
           with(model_flags(),
                {"--input", input, "--policies", "full,dbudget,snapkv:0.5", "--output-json", json_path})),
      &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_NE(table.find("| full | 8/8 | 1.000 | 1.0000 |"), std::string::npos) << table;
  const auto json = nlohmann::json::parse(read_text_file(json_path));
  ASSERT_EQ(json["policies"].size(), 3u);
  const auto& full = json["policies"][0];
  EXPECT_EQ(full["policy"], "full");
  EXPECT_EQ(full["num_requests"], 8);
  EXPECT_EQ(full["num_exact"], 8);
  EXPECT_EQ(full["exact_agreement"], 1.0);
  EXPECT_EQ(full["mean_kv_kept_fraction"], 1.0);
  EXPECT_EQ(full["mean_tf_agreement"], 1.0);  // fed its own outputs, the full cache agrees with itself
  EXPECT_LE(full["mean_tf_kl"].get<double>(), 1e-9);
  EXPECT_EQ(full["requests"].size(), 8u);
  const auto& dbudget = json["policies"][1];
  EXPECT_EQ(dbudget["policy"], "dbudget");
  EXPECT_LT(dbudget["mean_tf_agreement"].get<double>(), 1.0);  // 17 of 60 exact over the whole set
  EXPECT_GT(dbudget["mean_tf_kl"].get<double>(), 0.0);
  EXPECT_LT(dbudget["mean_kv_kept_fraction"].get<double>(), 1.0);
  EXPECT_GT(dbudget["blocks_freed"].get<size_t>(), 0u);
  const auto& snapkv = json["policies"][2];
  EXPECT_NEAR(snapkv["mean_kv_kept_fraction"].get<double>(), 0.5, 0.02);
  for (const auto& p : json["policies"]) {
    EXPECT_LE(p["kept_fraction_min"].get<double>(), p["kept_fraction_median"].get<double>());
    EXPECT_LE(p["kept_fraction_median"].get<double>(), p["kept_fraction_max"].get<double>());
    EXPECT_GE(p["mean_prefix_fraction"].get<double>(), 0.0);
    EXPECT_LE(p["mean_prefix_fraction"].get<double>(), 1.0);
  }
}

}  // namespace
}  // namespace prunekv::testing
