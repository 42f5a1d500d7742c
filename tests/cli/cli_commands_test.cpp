// The subcommands end to end, in-process, on the synthetic stories260K shape (no files needed).
#include <gtest/gtest.h>

#include "tests/cli/cli_test_helpers.h"

namespace prunekv::testing {
namespace {

const std::string kModel = "synthetic:stories260K";

// `generate` over `input` with room for every request; its output records.
// Exits 3 (some failed) when any line is bad.
std::vector<nlohmann::json> generate_records(const std::string& input, const std::string& output,
                                             int expected_exit = cli::kExitSomeRequestsFailed) {
  EXPECT_EQ(run_prunekv({"--log-level", "off", "generate", "--model", kModel, "--input", input, "--output",
                         output, "--kv-blocks", "4000", "--ignore-eos", "-q"}),
            expected_exit);
  return read_jsonl_file(output);
}

TEST(CliGenerate, MixedGoodAndBadLinesYieldOneRecordPerLineInOrder) {
  const std::string input = cli_temp_path("in.jsonl"), output = cli_temp_path("out.jsonl");
  write_text_file(input,
                  "{\"id\": \"a\", \"prompt_tokens\": [1, 20, 30], \"max_tokens\": 4}\n"
                  "{\"id\": \"b\", \"prompt_tokens\": \"oops\"}\n"
                  "this is not json\n"
                  "{\"id\": \"c\", \"prompt_tokens\": [1, 5], \"max_tokens\": 100000}\n"
                  "{\"prompt_tokens\": [1, 7, 8, 9], \"max_tokens\": 3}\n"
                  "{\"id\": \"t\", \"prompt\": \"needs a tokenizer\"}\n"
                  "{\"id\": \"d\", \"prompt_tokens\": [1, 2, 3], \"max_tokens\": 2}\n");
  const auto records = generate_records(input, output);
  ASSERT_EQ(records.size(), 7u);
  EXPECT_EQ(records[0]["id"], "a");
  EXPECT_EQ(records[0]["output_tokens"].size(), 4u);
  EXPECT_EQ(records[0]["num_prompt_tokens"], 3);
  EXPECT_EQ(records[0]["finish_reason"], "length");
  EXPECT_TRUE(records[0].contains("kv_kept_fraction"));
  EXPECT_TRUE(records[0].contains("ttft_ms"));
  EXPECT_EQ(records[1]["id"], "b");
  EXPECT_TRUE(records[1].contains("error"));
  EXPECT_EQ(records[2]["id"], "line-3");  // named by its line
  EXPECT_NE(records[2]["error"].get<std::string>().find("malformed JSON"), std::string::npos);
  EXPECT_EQ(records[3]["id"], "c");  // too long for the context: an error record from the engine
  EXPECT_NE(records[3]["error"].get<std::string>().find("context"), std::string::npos);
  EXPECT_EQ(records[4]["id"], "line-5");
  EXPECT_EQ(records[4]["output_tokens"].size(), 3u);
  EXPECT_EQ(records[5]["id"], "t");  // a text prompt on a model without a tokenizer
  EXPECT_TRUE(records[5].contains("error"));
  EXPECT_EQ(records[6]["id"], "d");
  EXPECT_EQ(records[6]["output_tokens"].size(), 2u);
}

TEST(CliGenerate, ALinesPolicyOverridesTheDefaultForThatRequestOnly) {
  const std::string input = cli_temp_path("in.jsonl"), output = cli_temp_path("out.jsonl");
  std::string prompt = "[1";
  for (int t = 2; t <= 40; ++t) prompt += ", " + std::to_string(t);
  prompt += "]";
  write_text_file(input, "{\"id\": \"default\", \"prompt_tokens\": " + prompt + ", \"max_tokens\": 3}\n" +
                             "{\"id\": \"own\", \"prompt_tokens\": " + prompt +
                             ", \"max_tokens\": 3, \"policy\": \"streaming:0.5\"}\n" +
                             "{\"id\": \"unknown\", \"prompt_tokens\": " + prompt +
                             ", \"max_tokens\": 3, \"policy\": \"nope\"}\n");
  const auto records = generate_records(input, output);
  ASSERT_EQ(records.size(), 3u);
  // --policy's default, topp: 36 of the 40 are sinks or window, and the 4 others carry more
  // than eps = 0.001 of the synthetic model's attention, so all stay.
  EXPECT_EQ(records[0]["kv_kept_fraction"], 1.0);
  EXPECT_EQ(records[0]["policy"], "topp");
  EXPECT_EQ(records[1]["policy"], "streaming:0.5");
  EXPECT_EQ(records[1]["kv_kept_fraction"], 0.5);  // 4 sinks + 16 recent of 40
  EXPECT_EQ(records[1]["output_tokens"].size(), 3u);
  ASSERT_TRUE(records[2].contains("error"));  // fails alone, named
  EXPECT_NE(records[2]["error"].get<std::string>().find("nope"), std::string::npos);
}

TEST(CliGenerate, BadFlagsFailWithoutServing) {
  const std::string input = cli_temp_path("in.jsonl");
  write_text_file(input, "{\"prompt_tokens\": [1, 2]}\n");
  // A malformed --kv-memory is a ConfigError: exit code 1.
  EXPECT_EQ(run_prunekv({"--log-level", "off", "generate", "--model", kModel, "--input", input, "--kv-memory",
                         "lots"}),
            1);
  EXPECT_EQ(run_prunekv(
                {"--log-level", "off", "generate", "--model", kModel, "--input", input, "--kv-memory", "0"}),
            1);
  // --kv-blocks and --kv-memory exclude each other (a CLI11 parse error).
  EXPECT_NE(run_prunekv({"--log-level", "off", "generate", "--model", kModel, "--input", input, "--kv-blocks",
                         "10", "--kv-memory", "1MiB"}),
            0);
  EXPECT_EQ(run_prunekv(
                {"--log-level", "off", "generate", "--model", kModel, "--input", input, "--policy", "nope"}),
            1);
  EXPECT_EQ(run_prunekv({"--log-level", "off", "generate", "--model", "synthetic:nope", "--input", input}),
            1);
  EXPECT_EQ(
      run_prunekv({"--log-level", "off", "generate", "--model", kModel, "--input", cli_temp_path("missing")}),
      1);
}

TEST(CliBench, RandomPromptsPrintThroughputAndWriteTheIssueJson) {
  const std::string json_path = cli_temp_path("bench.json"), svg_path = cli_temp_path("bench.svg");
  int rc = -1;
  const std::string out = run_prunekv_stdout({"--log-level",
                                              "off",
                                              "bench",
                                              "--model",
                                              kModel,
                                              "--num-prompts",
                                              "6",
                                              "--input-len",
                                              "40",
                                              "--output-len",
                                              "6",
                                              "--policy",
                                              "full,dbudget",
                                              "--kv-blocks",
                                              "600",
                                              "--verify",
                                              "--verify-samples",
                                              "3",
                                              "--output-json",
                                              json_path,
                                              "--plot",
                                              svg_path,
                                              "--seed",
                                              "5",
                                              "--repetitions",
                                              "3"},
                                             &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("prunekv bench: build "), std::string::npos) << out;
  EXPECT_NE(out.find("KV pool: 600 blocks x 16 tokens"), std::string::npos) << out;
  EXPECT_NE(out.find("Throughput: "), std::string::npos);
  EXPECT_NE(out.find(" requests/s, "), std::string::npos);
  EXPECT_NE(out.find(" total tokens/s, "), std::string::npos);
  EXPECT_NE(out.find(" output tokens/s"), std::string::npos);
  EXPECT_NE(out.find("Total num output tokens:  36"), std::string::npos) << out;  // ignore_eos: 6 x 6
  EXPECT_NE(out.find("speed-up vs full"), std::string::npos);
  EXPECT_EQ(out.find("run 3/3 dbudget: "), std::string::npos) << "progress goes to stderr";
  EXPECT_NE(out.find("Repetitions: 3, elapsed "), std::string::npos) << out;
  const auto json = nlohmann::json::parse(read_text_file(json_path));
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0]["policy"], "full");
  EXPECT_EQ(json[1]["policy"], "dbudget");
  for (const auto& p : json) {
    for (const char* field :
         {"policy", "elapsed_time", "num_requests", "total_num_tokens", "requests_per_second",
          "tokens_per_second", "output_tokens_per_second", "peak_kv_blocks_used", "kv_blocks_total",
          "max_concurrency", "num_preemptions", "blocks_freed_by_pruning", "mean_kv_kept_fraction"})
      EXPECT_TRUE(p.contains(field)) << field;
    EXPECT_EQ(p["num_requests"], 6);
    EXPECT_EQ(p["total_num_tokens"], 6 * (40 + 6));
    EXPECT_EQ(p["kv_blocks_total"], 600);
    EXPECT_EQ(p["num_prefill_tokens"], 6 * 40);  // room for all six: nothing preempted, nothing recomputed
    EXPECT_EQ(p["num_recomputed_tokens"], 0);
    EXPECT_GE(p["num_decode_steps"], 5);  // the first of six tokens is sampled by the prefill
    EXPECT_EQ(p["verify_num_requests"], 3);
    EXPECT_EQ(p["elapsed_times"].size(), 3u);
  }
  EXPECT_EQ(json[0]["verify_exact_agreement"], 1.0);  // the full cache agrees with itself
  EXPECT_NE(read_text_file(svg_path).find("<svg"), std::string::npos);
}

TEST(CliBench, NeedsAnInputOrAllRandomPromptSizes) {
  EXPECT_EQ(run_prunekv({"--log-level", "off", "bench", "--model", kModel, "--num-prompts", "4"}), 1);
  EXPECT_EQ(run_prunekv({"--log-level", "off", "bench", "--model", kModel}), 1);
  EXPECT_NE(run_prunekv({"--log-level", "off", "bench", "--model", kModel, "--num-prompts", "4", "--input-len", "8",
                         "--output-len", "2", "--repetitions", "0"}),
            0);
}

TEST(CliBatchedBench, PrintsLlamaTableAndSkipsCasesBeyondTheContext) {
  int rc = -1;
  const std::string md = run_prunekv_stdout({"--log-level", "off", "batched-bench", "--model", kModel, "-npp",
                                             "16,600", "-ntg", "4", "-npl", "1,3", "-t", "1"},
                                            &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_NE(md.find("|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s "
                    "|    S t/s |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("|    16 |      4 |    1 |     20 |"), std::string::npos) << md;
  EXPECT_NE(md.find("|    16 |      4 |    3 |     60 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("|   600 |"), std::string::npos) << md;  // 604 > context 512

  const std::string jsonl =
      run_prunekv_stdout({"--log-level", "off", "batched-bench", "--model", kModel, "-npp", "8", "-ntg", "2",
                          "-npl", "2", "--output-format", "jsonl"},
                         &rc);
  ASSERT_EQ(rc, 0);
  const auto row = nlohmann::json::parse(jsonl);
  EXPECT_EQ(row["pp"], 8);
  EXPECT_EQ(row["tg"], 2);
  EXPECT_EQ(row["pl"], 2);
  EXPECT_EQ(row["n_kv"], 20);
  EXPECT_TRUE(row.contains("speed_tg"));
}

TEST(CliPolicyHelp, ListsThePoliciesAndExitsCleanly) {
  int rc = -1;
  const std::string out = run_prunekv_stdout({"generate", "--policy-help"}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("dbudget"), std::string::npos) << out;
  EXPECT_NE(out.find("topp-blk"), std::string::npos) << out;
}

TEST(CliGenerate, DefaultsToTheThresholdFreeTopPPolicy) {
  int rc = -1;
  const std::string out = run_prunekv_stdout({"generate", "--help"}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("--policy TEXT:POLICY=topp "), std::string::npos) << out;
}

}  // namespace
}  // namespace prunekv::testing
