// Both batch formats: detection per file, OpenAI Batch lines in and records out, and the ids a
// written record echoes back (what resume and merge match lines by).
#include "scheduler/batch_file.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sstream>

#include "common/error.h"
#include "scheduler/openai_batch.h"

namespace prunekv {
namespace {

using nlohmann::json;

BatchInput read_text(const std::string& text) {
  std::istringstream in(text);
  return read_batch_text(in, RequestDefaults{});
}

std::string openai_line(const json& body, const std::string& custom_id = "r1") {
  return json{{"custom_id", custom_id}, {"method", "POST"}, {"url", "/v1/completions"}, {"body", body}}.dump();
}

RequestOutput served_output() {
  RequestOutput output;
  output.output_tokens = {5, 6, 7};
  output.text = "abc";
  output.num_prompt_tokens = 4;
  output.finish_reason = FinishReason::kLength;
  return output;
}

TEST(BatchFile, DetectsTheFormatFromTheFirstObjectLine) {
  EXPECT_EQ(read_text("{\"prompt\": \"x\"}\n").format, BatchFormat::kPrunekv);
  // A broken first line does not decide; the first JSON object does.
  const BatchInput input = read_text("not json\n\n" + openai_line({{"prompt", "x"}}) + "\n");
  EXPECT_EQ(input.format, BatchFormat::kOpenAiBatch);
  ASSERT_EQ(input.lines.size(), 2u);  // the blank line is no request
  EXPECT_FALSE(input.lines[0].spec);
  EXPECT_NE(input.lines[0].error.find("line 1: malformed JSON"), std::string::npos);
  ASSERT_TRUE(input.lines[1].spec);
  EXPECT_EQ(input.lines[1].line_number, 3u);
}

TEST(BatchFile, ReadsEveryBodyFieldOfAnOpenAiLine) {
  const BatchInput input = read_text(
      openai_line({{"model", "any"}, {"prompt", "Once"}, {"max_tokens", 9}, {"temperature", 0.5}, {"top_p", 0.9},
                   {"top_k", 3}, {"seed", 11}, {"stop", {"x"}}, {"n", 1}, {"policy", "snapkv:0.5"}}) +
      "\n" + openai_line({{"prompt", {1, 2, 3}}}, "r2") + "\n" + openai_line({{"prompt", {"one"}}}, "r3") + "\n");
  ASSERT_EQ(input.lines.size(), 3u);
  ASSERT_TRUE(input.lines[0].spec) << input.lines[0].error;
  const RequestSpec& spec = *input.lines[0].spec;
  EXPECT_EQ(spec.id, "r1");
  EXPECT_EQ(input.lines[0].id, "r1");
  EXPECT_EQ(spec.prompt, "Once");
  EXPECT_EQ(spec.max_tokens, 9u);
  EXPECT_FLOAT_EQ(spec.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(spec.sampling.top_p, 0.9f);
  EXPECT_EQ(spec.sampling.top_k, 3);
  EXPECT_EQ(spec.sampling.seed, 11u);
  EXPECT_EQ(spec.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(spec.policy, "snapkv:0.5");
  ASSERT_TRUE(input.lines[1].spec) << input.lines[1].error;
  EXPECT_EQ(input.lines[1].spec->prompt_tokens, (std::vector<TokenId>{1, 2, 3}));
  ASSERT_TRUE(input.lines[2].spec) << input.lines[2].error;
  EXPECT_EQ(input.lines[2].spec->prompt, "one");
}

TEST(BatchFile, ALineInNeitherFormatIsAnErrorForThatLineAlone) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {json{{"custom_id", "r9"}, {"method", "GET"}, {"url", "/v1/completions"}, {"body", {{"prompt", "x"}}}}.dump(),
       "field \"method\": expected \"POST\""},
      {json{{"custom_id", "r9"}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", {{"prompt", "x"}}}}
           .dump(),
       "field \"url\": expected \"/v1/completions\""},
      {openai_line({{"prompt", "x"}, {"n", 2}}, "r9"), "field \"body.n\": expected 1"},
      {openai_line({{"prompt", {"a", "b"}}}, "r9"), "field \"body.prompt\""},
      {openai_line({{"max_tokens", 3}}, "r9"), "missing field \"body.prompt\""},
      {openai_line(5, "r9"), "field \"body\": expected an object"},
      {json{{"custom_id", 7}, {"body", {{"prompt", "x"}}}}.dump(), "field \"custom_id\": expected a string"},
      // A prunekv line in an OpenAI file: no custom_id.
      {json{{"id", "p"}, {"prompt", "x"}}.dump(), "missing field \"custom_id\""},
      // A number beyond double: nlohmann's out_of_range, once uncaught (found by fuzz/jsonl_fuzzer).
      {R"({"custom_id": "r9", "body": {"prompt": "x", "temperature": 1e400}})", "malformed JSON"},
  };
  std::string text = openai_line({{"prompt", "ok"}}, "first") + "\n";
  for (const auto& [line, expected] : cases) text += line + "\n";
  const BatchInput input = read_text(text);
  ASSERT_EQ(input.format, BatchFormat::kOpenAiBatch);
  ASSERT_EQ(input.lines.size(), cases.size() + 1);
  EXPECT_TRUE(input.lines[0].spec);
  for (size_t k = 0; k < cases.size(); ++k) {
    const ParsedLine& line = input.lines[k + 1];
    SCOPED_TRACE(cases[k].first);
    EXPECT_FALSE(line.spec);
    EXPECT_NE(line.error.find(fmt::format("line {}: ", k + 2)), std::string::npos) << line.error;
    EXPECT_NE(line.error.find(cases[k].second), std::string::npos) << line.error;
  }
  EXPECT_EQ(input.lines[1].id, "r9");  // the custom_id is echoed when it is a string
  EXPECT_EQ(input.lines[7].id, 8);     // else the line number

  // An OpenAI line in a prunekv file.
  const BatchInput mixed = read_text("{\"prompt\": \"x\"}\n" + openai_line({{"prompt", "y"}}) + "\n");
  ASSERT_EQ(mixed.format, BatchFormat::kPrunekv);
  EXPECT_FALSE(mixed.lines[1].spec);
  EXPECT_NE(mixed.lines[1].error.find("an OpenAI Batch line in a prunekv JSONL file"), std::string::npos);
}

TEST(BatchFile, OpenAiRecordsHaveVllmRunBatchShapeAndEchoTheirLine) {
  const json record = batch_output_record(BatchFormat::kOpenAiBatch, "r1", served_output(), "stories260K.bin", "full");
  EXPECT_EQ(record["id"], "prunekv-r1");
  EXPECT_EQ(record["custom_id"], "r1");
  EXPECT_TRUE(record["error"].is_null());
  EXPECT_EQ(record["response"]["status_code"], 200);
  const json& body = record["response"]["body"];
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], "stories260K.bin");
  EXPECT_EQ(body["choices"][0]["text"], "abc");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(body["usage"]["completion_tokens"], 3);
  EXPECT_EQ(body["usage"]["total_tokens"], 7);
  EXPECT_EQ(record_id(BatchFormat::kOpenAiBatch, record), "r1");
  EXPECT_FALSE(is_error_record(BatchFormat::kOpenAiBatch, record));

  const json error = batch_error_record(BatchFormat::kOpenAiBatch, "r2", "line 2: bad");
  EXPECT_EQ(error["response"]["status_code"], 400);
  EXPECT_TRUE(error["response"]["body"].is_null());
  EXPECT_EQ(error["error"]["message"], "line 2: bad");
  EXPECT_EQ(record_id(BatchFormat::kOpenAiBatch, error), "r2");
  EXPECT_TRUE(is_error_record(BatchFormat::kOpenAiBatch, error));

  RequestOutput failed = served_output();
  failed.finish_reason = FinishReason::kError;
  failed.error = "prompt too long";
  EXPECT_TRUE(is_error_record(BatchFormat::kOpenAiBatch,
                              batch_output_record(BatchFormat::kOpenAiBatch, "r3", failed, "m", "full")));
}

TEST(BatchFile, EveryLinesIdComesBackFromItsRecordInBothFormats) {
  // Read a file, write a record per line (served or error), read each record's id back.
  const std::string prunekv_text = "{\"id\": \"a\", \"prompt\": \"x\"}\n{\"id\": 7, \"prompt\": \"x\"}\n"
                                   "{\"prompt\": \"x\"}\n{\"id\": \"bad\"}\nnot json\n";
  const std::string openai_text = openai_line({{"prompt", "x"}}, "a") + "\n" +
                                  openai_line({{"max_tokens", 2}}, "b") + "\nnot json\n";
  for (const std::string& text : {prunekv_text, openai_text}) {
    const BatchInput input = read_text(text);
    for (const ParsedLine& line : input.lines) {
      const json record = line.spec ? json(batch_output_record(input.format, line.id, served_output(), "m", "full"))
                                    : json(batch_error_record(input.format, line.id, line.error));
      // Through text, as resume and merge see it.
      const json reread = json::parse(record.dump());
      EXPECT_EQ(record_id(input.format, reread), line.id) << reread.dump();
      EXPECT_EQ(is_error_record(input.format, reread), !line.spec) << reread.dump();
    }
  }
  EXPECT_EQ(read_text(prunekv_text).lines[2].id, "line-3");  // no id: the line number, as a string
}

TEST(BatchFile, FormatNamesRoundTrip) {
  for (BatchFormat format : {BatchFormat::kPrunekv, BatchFormat::kOpenAiBatch})
    EXPECT_EQ(batch_format_from_string(to_string(format)), format);
  EXPECT_THROW(batch_format_from_string("csv"), InputError);
}

}  // namespace
}  // namespace prunekv
