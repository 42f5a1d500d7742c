#include "scheduler/jsonl.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace prunekv {
namespace {

std::string error_of(const std::string& line, size_t line_number = 3) {
  try {
    parse_request_line(line, line_number, RequestDefaults{});
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(JsonlParsing, ReadsEveryFieldOfAGoodLine) {
  const RequestSpec spec = parse_request_line(
      R"({"id": "a1", "prompt": "Once upon", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "seed": 11, "stop": ["x", "y"], "policy": "snapkv:0.5"})",
      1, RequestDefaults{});
  EXPECT_EQ(spec.id, "a1");
  EXPECT_EQ(spec.prompt, "Once upon");
  EXPECT_TRUE(spec.prompt_tokens.empty());
  EXPECT_EQ(spec.max_tokens, 7u);
  EXPECT_FLOAT_EQ(spec.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(spec.sampling.top_p, 0.9f);
  EXPECT_EQ(spec.sampling.top_k, 40);
  EXPECT_EQ(spec.sampling.seed, 11u);
  EXPECT_EQ(spec.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(spec.policy, "snapkv:0.5");
}

TEST(JsonlParsing, UsesDefaultsForFieldsALineOmits) {
  RequestDefaults defaults;
  defaults.max_tokens = 5;
  defaults.sampling.temperature = 0.8f;
  defaults.sampling.seed = 3;
  defaults.stop = {"END"};
  defaults.ignore_eos = true;
  defaults.policy = "dbudget";
  const RequestSpec spec = parse_request_line(R"({"prompt_tokens": [1, 5, 9]})", 4, defaults);
  EXPECT_EQ(spec.prompt_tokens, (std::vector<TokenId>{1, 5, 9}));
  EXPECT_EQ(spec.max_tokens, 5u);
  EXPECT_FLOAT_EQ(spec.sampling.temperature, 0.8f);
  EXPECT_EQ(spec.sampling.seed, 3u);
  EXPECT_EQ(spec.stop, (std::vector<std::string>{"END"}));
  EXPECT_TRUE(spec.ignore_eos);
  EXPECT_EQ(spec.policy, "dbudget");
}

TEST(JsonlParsing, LineWithoutIdGetsAStringNamingItsLine) {
  // "line-12", never 12: a user's own integer id 12 on another line must not collide with it.
  EXPECT_EQ(parse_request_line(R"({"prompt": "hi"})", 12, RequestDefaults{}).id, "line-12");
  EXPECT_EQ(parse_request_line(R"({"id": 7, "prompt": "hi"})", 12, RequestDefaults{}).id, "7");
}

TEST(JsonlParsing, PromptTokensWinOverPromptText) {
  const RequestSpec spec =
      parse_request_line(R"({"prompt": "text", "prompt_tokens": [1, 2]})", 1, RequestDefaults{});
  EXPECT_EQ(spec.prompt_tokens, (std::vector<TokenId>{1, 2}));
}

TEST(JsonlParsing, StopAcceptsASingleString) {
  EXPECT_EQ(parse_request_line(R"({"prompt": "a", "stop": "."})", 1, RequestDefaults{}).stop,
            (std::vector<std::string>{"."}));
}

TEST(JsonlParsing, IgnoresFieldsItDoesNotKnow) {
  const RequestSpec spec = parse_request_line(
      R"({"prompt": "a", "output_tokens": [1], "finish_reason": "stop"})", 1, RequestDefaults{});
  EXPECT_EQ(spec.prompt, "a");
}

TEST(JsonlParsing, EachBadLineNamesItsLineFieldAndWhatWasFound) {
  // Malformed JSON.
  EXPECT_NE(error_of("{\"prompt\": ").find("line 3: malformed JSON"), std::string::npos);
  // Not an object.
  EXPECT_NE(error_of("[1, 2]").find("line 3: expected a JSON object, found array"), std::string::npos);
  // No prompt at all.
  EXPECT_NE(error_of(R"({"id": "x"})").find("line 3: missing prompt"), std::string::npos);
  // Wrong types.
  EXPECT_NE(error_of(R"({"prompt": 5})").find("field \"prompt\": expected a string, found number 5"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"prompt_tokens": "1 2"})").find("field \"prompt_tokens\""), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt_tokens": [1, -4]})").find("found number -4"), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt_tokens": []})").find("non-empty"), std::string::npos);
  EXPECT_NE(
      error_of(R"({"prompt": "a", "max_tokens": "ten"})").find("field \"max_tokens\": expected an integer"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "max_tokens": 0})").find("found number 0"), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "max_tokens": 1.5})").find("field \"max_tokens\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "temperature": "hot"})").find("field \"temperature\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "top_k": -1})").find("field \"top_k\""), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "seed": true})").find("field \"seed\""), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "stop": [1]})").find("field \"stop\""), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "policy": 3})").find("field \"policy\": expected a pruning policy spec"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "policy": ""})").find("field \"policy\""), std::string::npos);
  EXPECT_NE(error_of(R"({"id": [1], "prompt": "a"})").find("field \"id\": expected a string or an integer"),
            std::string::npos);
  // Out-of-range sampling values (the sampler's own validation, prefixed with the line).
  EXPECT_NE(error_of(R"({"prompt": "a", "top_p": 1.5})").find("line 3:"), std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "temperature": -1})").find("line 3:"), std::string::npos);
}

TEST(JsonlParsing, ReadsEveryLineKeepingBadOnesAsErrorsInOrder) {
  std::istringstream in(
      "{\"id\": \"a\", \"prompt\": \"x\"}\n"
      "\n"
      "not json\n"
      "{\"id\": \"b\", \"prompt\": 1}\r\n"
      "{\"prompt_tokens\": [1]}\n");
  const auto lines = read_request_lines(in, RequestDefaults{});
  ASSERT_EQ(lines.size(), 4u);  // the blank line is not a request
  EXPECT_EQ(lines[0].id, "a");
  EXPECT_TRUE(lines[0].spec.has_value());
  EXPECT_EQ(lines[1].line_number, 3u);
  EXPECT_EQ(lines[1].id, "line-3");  // unparseable: named by its line
  EXPECT_FALSE(lines[1].spec.has_value());
  EXPECT_NE(lines[1].error.find("malformed JSON"), std::string::npos);
  EXPECT_EQ(lines[2].id, "b");  // a bad line whose JSON parsed keeps its id
  EXPECT_FALSE(lines[2].spec.has_value());
  EXPECT_EQ(lines[3].id, "line-5");
  ASSERT_TRUE(lines[3].spec.has_value());
  EXPECT_EQ(lines[3].spec->id, "line-5");
}

// Found by fuzz/jsonl_fuzzer: nlohmann throws out_of_range, not parse_error, for a number beyond
// double, and that escaped the line and ended the whole run.
TEST(JsonlParsing, NumberBeyondDoubleIsAnErrorForItsLineAlone) {
  EXPECT_NE(error_of(R"({"prompt": "a", "temperature": 1e400})").find("line 3: malformed JSON"), std::string::npos);
  std::istringstream in("{\"id\": \"big\", \"prompt\": \"x\", \"extra\": [1e400]}\n{\"id\": \"ok\", \"prompt\": \"y\"}\n");
  const auto lines = read_request_lines(in, RequestDefaults{});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_FALSE(lines[0].spec.has_value());
  EXPECT_NE(lines[0].error.find("number overflow"), std::string::npos) << lines[0].error;
  EXPECT_TRUE(lines[1].spec.has_value());
}

TEST(JsonlParsing, MissingInputFileIsAnInputError) {
  EXPECT_THROW(read_request_file("/nonexistent/prunekv/input.jsonl", RequestDefaults{}), InputError);
}

TEST(JsonlParsing, ReadAllRequestsRejectsABadLineAndAnEmptyFileAndOverridesLinePolicies) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string good = (dir / "prunekv_read_all_good.jsonl").string();
  const std::string bad = (dir / "prunekv_read_all_bad.jsonl").string();
  const std::string empty = (dir / "prunekv_read_all_empty.jsonl").string();
  std::ofstream(good) << "{\"id\": \"a\", \"prompt_tokens\": [1, 2], \"policy\": \"h2o:0.5\"}\n\n{\"prompt_tokens\": [1]}\n";
  std::ofstream(bad) << "{\"id\": \"a\", \"prompt_tokens\": [1, 2]}\n{not json\n";
  std::ofstream(empty) << "\n";
  RequestDefaults defaults;
  defaults.policy = "dbudget";
  const auto specs = read_all_requests(good, defaults);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].id, "a");
  // bench and eval compare policies over the same requests: a line's own policy gives way.
  EXPECT_EQ(specs[0].policy, "dbudget");
  EXPECT_EQ(specs[1].policy, "dbudget");
  try {
    read_all_requests(bad, RequestDefaults{});
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_all_requests(empty, RequestDefaults{}), InputError);
  for (const auto& path : {good, bad, empty}) std::filesystem::remove(path);
}

TEST(JsonlRecords, OutputRecordHasTheIssueFieldsInOrder) {
  RequestOutput out;
  out.id = "q";
  out.output_tokens = {5, 6};
  out.text = "hi";
  out.num_prompt_tokens = 9;
  out.finish_reason = FinishReason::kStop;
  out.kv_kept_fraction = 0.5;
  out.ttft = 0.25;
  const auto record = output_record("q", out, "snapkv:0.5");
  std::vector<std::string> keys;
  for (const auto& [key, value] : record.items()) keys.push_back(key);
  EXPECT_EQ(record["policy"], "snapkv:0.5");  // the policy that served it
  EXPECT_EQ(keys, (std::vector<std::string>{"id", "policy", "text", "output_tokens", "num_prompt_tokens",
                                            "finish_reason", "kv_kept_fraction", "ttft_ms"}));
  EXPECT_EQ(record["finish_reason"], "stop");
  EXPECT_DOUBLE_EQ(record["ttft_ms"].get<double>(), 250.0);
  EXPECT_EQ(record["output_tokens"], nlohmann::ordered_json({5, 6}));
}

TEST(JsonlRecords, EngineErrorBecomesAnErrorRecord) {
  RequestOutput out;
  out.finish_reason = FinishReason::kError;
  out.error = "prompt too long";
  const auto record = output_record(4, out, "full");
  EXPECT_EQ(record, nlohmann::ordered_json({{"id", 4}, {"error", "prompt too long"}}));
}

}  // namespace
}  // namespace prunekv
