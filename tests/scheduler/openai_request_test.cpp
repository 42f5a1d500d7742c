#include "scheduler/openai_request.h"

#include <gtest/gtest.h>

#include "scheduler/json_fields.h"

namespace prunekv {
namespace {

using nlohmann::json;

TEST(OpenAiRequest, ParsesAChatBody) {
  const OpenAiRequest r = parse_openai_request(
      json::parse(R"({"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U",
                      "name": "ann"}], "max_completion_tokens": 5, "add_generation_prompt": false, "top_k": -1})"),
      OpenAiEndpoint::kChatCompletions, RequestSpec{});
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[1].content, "U");
  EXPECT_EQ(r.spec.max_tokens, 5u);
  EXPECT_FALSE(r.add_generation_prompt);
  EXPECT_EQ(r.model, "m");
  EXPECT_TRUE(r.spec.prompt.empty());
}

TEST(OpenAiRequest, DefaultsFillWhatTheBodyLeavesOutAndNullKeepsThem) {
  RequestSpec defaults;
  defaults.max_tokens = 99;
  defaults.sampling.temperature = 0.25f;
  defaults.policy = "dbudget";
  const OpenAiRequest r = parse_openai_request(json::parse(R"({"prompt": "a", "temperature": null})"),
                                               OpenAiEndpoint::kCompletions, defaults);
  EXPECT_EQ(r.spec.max_tokens, 99u);
  EXPECT_FLOAT_EQ(r.spec.sampling.temperature, 0.25f);
  EXPECT_EQ(r.spec.policy, "dbudget");
}

TEST(OpenAiRequest, EachEndpointRefusesTheOthersInput) {
  const auto field_of = [](const char* body, OpenAiEndpoint endpoint) {
    try {
      parse_openai_request(json::parse(body), endpoint, RequestSpec{});
    } catch (const FieldError& e) {
      return e.field();
    }
    return std::string("accepted");
  };
  EXPECT_EQ(field_of(R"({"prompt": "a"})", OpenAiEndpoint::kChatCompletions), "prompt");
  EXPECT_EQ(field_of(R"({"messages": []})", OpenAiEndpoint::kCompletions), "messages");
  EXPECT_EQ(field_of(R"({"max_completion_tokens": 3, "prompt": "a"})", OpenAiEndpoint::kCompletions),
            "max_completion_tokens");
  EXPECT_EQ(field_of(R"({"prompt": ["a", "b"]})", OpenAiEndpoint::kCompletions), "prompt");
  EXPECT_EQ(field_of(R"({"prompt": "a", "n": 2})", OpenAiEndpoint::kCompletions), "n");
  EXPECT_EQ(field_of(R"({"messages": [{"role": "user", "content": "x", "tool_calls": []}]})",
                     OpenAiEndpoint::kChatCompletions),
            "messages[0].tool_calls");
}

}  // namespace
}  // namespace prunekv
