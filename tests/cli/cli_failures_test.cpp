// Nothing fails silently: lost writes, exit statuses and summaries, inputs that are not requests,
// through the CLI in-process on the synthetic stories260K shape (context 512, no files needed).
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/commands.h"
#include "tests/cli/cli_test_helpers.h"
#include "tests/testing/gguf_writer.h"

namespace prunekv::testing {
namespace {

const std::string kModel = "synthetic:stories260K";

// A prompt_tokens array of n ids, for lines that must fit, or not fit, the 512-token context.
std::string prompt_of(size_t n) {
  std::string out = "[1";
  for (size_t t = 1; t < n; ++t) out += ", " + std::to_string(2 + t % 200);
  return out + "]";
}

std::vector<std::string> generate_args(const std::string& input, const std::string& output,
                                       std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--log-level", "off", "generate", "--model", kModel, "--input", input,
                                   "--output", output, "--kv-blocks", "400", "-q"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::vector<std::string> bench_args(const std::string& input, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--log-level", "off",        "bench", "--model", kModel, "--input",
                                   input,         "--kv-blocks", "400",  "--no-warmup"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(CliLostWrites, GenerateToAFullDeviceExitsNonZero) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  const std::string input = cli_temp_path("in.jsonl");
  write_text_file(input, "{\"id\": \"a\", \"prompt_tokens\": [1, 2, 3], \"max_tokens\": 2}\n");
  EXPECT_EQ(run_prunekv(generate_args(input, "/dev/full")), 1);
  EXPECT_EQ(run_prunekv_stdout_to("/dev/full", generate_args(input, "-")), 1);
  EXPECT_EQ(run_prunekv(generate_args(input, cli_temp_path("out.jsonl"))), 0);  // the same run, written
}

TEST(CliLostWrites, BenchJsonAndPlotToAFullDeviceExitNonZero) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  const std::string input = cli_temp_path("in.jsonl");
  write_text_file(input, "{\"prompt_tokens\": [1, 2, 3], \"max_tokens\": 2}\n");
  int rc = -1;
  run_prunekv_stdout(bench_args(input, {"--output-json", "/dev/full"}), &rc);
  EXPECT_EQ(rc, 1);
  run_prunekv_stdout(bench_args(input, {"--plot", "/dev/full"}), &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(run_prunekv_stdout_to("/dev/full", bench_args(input)), 1);
}

TEST(CliExitStatus, GenerateExitsThreeWhenSomeRequestsFailedAndWritesTheRest) {
  const std::string input = cli_temp_path("in.jsonl"), output = cli_temp_path("out.jsonl");
  write_text_file(input, "{\"id\": \"ok\", \"prompt_tokens\": [1, 2, 3], \"max_tokens\": 2}\n"
                         "{\"id\": \"long\", \"prompt_tokens\": " + prompt_of(600) + "}\n");
  EXPECT_EQ(run_prunekv(generate_args(input, output)), cli::kExitSomeRequestsFailed);
  const auto records = read_jsonl_file(output);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["output_tokens"].size(), 2u);
  EXPECT_TRUE(records[1].contains("error"));
}

TEST(CliExitStatus, BenchCountsOnlyServedRequestsAndFailsWhenNoneWas) {
  const std::string input = cli_temp_path("in.jsonl"), json_path = cli_temp_path("bench.json");
  write_text_file(input, "{\"prompt_tokens\": [1, 2, 3], \"max_tokens\": 2}\n"
                         "{\"prompt_tokens\": " + prompt_of(600) + ", \"max_tokens\": 2}\n");
  int rc = -1;
  const std::string out = run_prunekv_stdout(bench_args(input, {"--output-json", json_path}), &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("num_failed_requests: 1 of 2"), std::string::npos) << out;
  const auto json = nlohmann::json::parse(read_text_file(json_path));
  EXPECT_EQ(json[0]["num_failed_requests"], 1);
  EXPECT_EQ(json[0]["total_num_tokens"], 3 + 2);  // the rejected 600-token prompt is not throughput
  EXPECT_NEAR(json[0]["requests_per_second"].get<double>() * json[0]["elapsed_time"].get<double>(), 1.0, 1e-6);

  write_text_file(input, "{\"prompt_tokens\": " + prompt_of(600) + ", \"max_tokens\": 2}\n");
  run_prunekv_stdout(bench_args(input), &rc);
  EXPECT_EQ(rc, 1) << "a bench where every request failed measured nothing";
}

TEST(CliValidation, BenchValidatesSamplingFlagsAsGenerateDoes) {
  const std::string input = cli_temp_path("in.jsonl");
  write_text_file(input, "{\"prompt_tokens\": [1, 2, 3], \"max_tokens\": 2}\n");
  int rc = -1;
  run_prunekv_stdout(bench_args(input, {"--temperature", "-1"}), &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(run_prunekv(generate_args(input, cli_temp_path("out.jsonl"), {"--temperature", "-1"})), 1);
}

TEST(CliInput, AFolderOrAnInputWithoutRequestsIsAnError) {
  const std::string dir = cli_temp_path("dir"), empty = cli_temp_path("empty.jsonl");
  std::filesystem::create_directories(dir);
  write_text_file(empty, "\n  \n");
  EXPECT_EQ(run_prunekv(generate_args(dir, cli_temp_path("out.jsonl"))), 1);
  EXPECT_EQ(run_prunekv(generate_args(empty, cli_temp_path("out.jsonl"))), 1);
  int rc = -1;
  run_prunekv_stdout(bench_args(dir), &rc);
  EXPECT_EQ(rc, 1);
  std::filesystem::remove_all(dir);
}

TEST(CliValidation, UnknownFieldsWarnOnceAndStrictMakesThemLineErrors) {
  const std::string input = cli_temp_path("in.jsonl"), output = cli_temp_path("out.jsonl");
  // A golden file's own fields (output_tokens, output_text, finish_reason) are known.
  write_text_file(input,
                  "{\"id\": \"a\", \"prompt_tokens\": [1, 2], \"max_token\": 3}\n"
                  "{\"id\": \"b\", \"prompt_tokens\": [1, 2], \"max_tokens\": 2, \"output_tokens\": [4, 5], "
                  "\"output_text\": \"x\", \"finish_reason\": \"length\"}\n");
  EXPECT_EQ(run_prunekv(generate_args(input, output, {"--max-tokens", "1"})), 0);
  auto records = read_jsonl_file(output);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["output_tokens"].size(), 1u) << "max_token is not max_tokens";
  EXPECT_EQ(records[1]["output_tokens"].size(), 2u);

  EXPECT_EQ(run_prunekv(generate_args(input, output, {"--strict"})), cli::kExitSomeRequestsFailed);
  records = read_jsonl_file(output);
  ASSERT_EQ(records.size(), 2u);
  const std::string error = records[0].value("error", "");
  EXPECT_NE(error.find("unknown field \"max_token\" (did you mean \"max_tokens\"?)"), std::string::npos) << error;
  EXPECT_FALSE(records[1].contains("error")) << records[1];
}

TEST(CliValidation, FlagsOutOfRangeAreRefused) {
  const std::string input = cli_temp_path("in.jsonl"), output = cli_temp_path("out.jsonl");
  write_text_file(input, "{\"prompt_tokens\": [1, 2], \"max_tokens\": 1}\n");
  const auto rc = [&](std::vector<std::string> extra) { return run_prunekv(generate_args(input, output, extra)); };
  EXPECT_NE(rc({"--policy", "full,dbudget"}), 0) << "generate serves under one policy";
  EXPECT_NE(rc({"--max-num-seqs", "-1"}), 0);
  EXPECT_NE(rc({"--max-tokens", "-5"}), 0);
  EXPECT_NE(rc({"--max-line-bytes", "0"}), 0);
  EXPECT_NE(rc({"-t", "0"}), 0);
  EXPECT_NE(rc({"-t", "100000"}), 0);
  EXPECT_EQ(rc({"-t", "1"}), 0);
  EXPECT_NE(run_prunekv({"--log-level", "off", "generate", "--model", kModel, "--input", input, "--kv-blocks", "0"}),
            0);
  EXPECT_NE(run_prunekv({"--log-level", "off", "simulate", "--model-shape", "Llama-3-8B", "--kv-memory", "1GiB",
                         "--num-requests", "-1"}),
            0);
}

TEST(CliInput, ALineLongerThanMaxLineBytesFailsAloneAndIsQuotedShort) {
  const std::string input = cli_temp_path("in.jsonl"), output = cli_temp_path("out.jsonl");
  const std::string huge = "{\"id\": \"big\", \"prompt\": \"" + std::string(100000, 'x') + "\"}";
  write_text_file(input, huge + "\n{\"id\": \"ok\", \"prompt_tokens\": [1, 2], \"max_tokens\": 1}\n" +
                             "{\"id\": \"bad\", \"prompt\": \"" + std::string(900, 'y') + "\n");  // unterminated
  EXPECT_EQ(run_prunekv(generate_args(input, output, {"--max-line-bytes", "1000"})), cli::kExitSomeRequestsFailed);
  const auto records = read_jsonl_file(output);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["id"], "line-1");  // not read whole, so not parsed for its id
  EXPECT_NE(records[0]["error"].get<std::string>().find("--max-line-bytes"), std::string::npos);
  EXPECT_EQ(records[1]["output_tokens"].size(), 1u);
  for (const size_t i : {size_t{0}, size_t{2}})
    EXPECT_LE(records[i]["error"].get<std::string>().size(), 260u) << records[i];
}

TEST(CliInput, TextRequestsOnAGgufWhoseTokenizerCannotRunAreRefusedAtLoad) {
  ModelConfig c;
  c.dim = 32, c.hidden_dim = 48, c.num_layers = 1, c.num_heads = 4, c.num_kv_heads = 2, c.vocab_size = 300;
  c.context_length = 64;
  GgufWriter w = make_llama_gguf(c);
  w.set_string("tokenizer.ggml.model", "gpt2");
  TempDir dir;
  const std::string model = dir.file("gpt2.gguf").string();
  w.write(model);
  const std::string input = cli_temp_path("in.jsonl"), output = cli_temp_path("out.jsonl");
  const auto generate = [&] {
    return run_prunekv({"--log-level", "off", "generate", "--model", model, "--input", input, "--output", output,
                        "--kv-blocks", "64", "-q"});
  };
  write_text_file(input, "{\"prompt_tokens\": [1, 2], \"max_tokens\": 1}\n{\"prompt\": \"hello\"}\n");
  EXPECT_EQ(generate(), 1) << "not a per-request failure";
  write_text_file(input, "{\"prompt_tokens\": [1, 2], \"max_tokens\": 1}\n");
  EXPECT_EQ(generate(), 0) << "token prompts need no tokenizer";
}

TEST(CliInput, SimulateRefusesLengthsBeyondTheContextBeforeAllocating) {
  // 4e9 prompt tokens would be 16 GB of token ids if the request were built.
  EXPECT_EQ(run_prunekv({"--log-level", "off", "simulate", "--model-shape", "Llama-3-8B", "--kv-memory", "1GiB",
                         "--num-requests", "2", "--prompt-len", "fixed:4000000000", "--output-len", "fixed:1"}),
            1);
}

}  // namespace
}  // namespace prunekv::testing
