// The server's pieces without sockets: the request parser, the text a stream may send, the
// Prometheus rendering, and the SSE splitter the benchmark and tests read streams with.
#include <gtest/gtest.h>

#include "bench/http_client.h"
#include "common/error.h"
#include "server/api_error.h"
#include "server/completion_request.h"
#include "server/server_metrics.h"
#include "server/stream_text.h"

namespace prunekv::server {
namespace {

TEST(CompletionRequest, ParsesOpenAiFieldsAndPrunekvExtensions) {
  const CompletionRequest r = parse_completion_request(
      R"({"model": "m", "prompt": ["Once"], "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": -1,
          "seed": 3, "stop": ["a", "bc"], "stream": true, "stream_options": {"include_usage": true}, "n": 1,
          "policy": "dbudget", "ignore_eos": true, "return_token_ids": true, "echo": false, "logprobs": null,
          "user": "u"})",
      "m");
  EXPECT_EQ(r.spec.prompt, "Once");
  EXPECT_EQ(r.spec.max_tokens, 7u);
  EXPECT_FLOAT_EQ(r.spec.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.spec.sampling.top_p, 0.9f);
  EXPECT_EQ(r.spec.sampling.top_k, 0);
  EXPECT_EQ(r.spec.sampling.seed, 3u);
  EXPECT_EQ(r.spec.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(r.spec.policy, "dbudget");
  EXPECT_TRUE(r.spec.ignore_eos);
  EXPECT_TRUE(r.stream && r.include_usage && r.return_token_ids);

  const CompletionRequest ids = parse_completion_request(R"({"prompt": [1, 2, 3]})", "m");
  EXPECT_EQ(ids.spec.prompt_tokens, (std::vector<TokenId>{1, 2, 3}));
  EXPECT_EQ(ids.spec.max_tokens, 16u);  // OpenAI's default
  EXPECT_FALSE(ids.stream);
}

TEST(CompletionRequest, ErrorsNameTheField) {
  struct Case {
    const char* body;
    int status;
    const char* param;
  };
  for (const Case& c : {Case{R"({"prompt": 1})", 400, "prompt"}, Case{R"({"prompt": "a", "top_k": -2})", 400, "top_k"},
                        Case{R"({"prompt": "a", "seed": -1})", 400, "seed"},
                        Case{R"({"prompt": "a", "stop": ["", "x"]})", 400, "stop"},
                        Case{R"({"prompt": "a", "stop": ["1", "2", "3", "4", "5"]})", 400, "stop"},
                        Case{R"({"prompt": "a", "best_of": 2})", 400, "best_of"},
                        Case{R"({"prompt": "a", "stream": true, "stream_options": {"x": 1}})", 400, "stream_options.x"},
                        Case{R"({"prompt": "a", "model": "other"})", 404, "model"},
                        Case{R"({"prompt": "a", "temperature": 3})", 400, "temperature"}}) {
    SCOPED_TRACE(c.body);
    try {
      parse_completion_request(c.body, "m");
      ADD_FAILURE() << "accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), c.status);
      EXPECT_EQ(e.param(), c.param);
      EXPECT_EQ(e.body()["error"]["param"], c.param);
    }
  }
  // A number beyond double is nlohmann's out_of_range, not parse_error (found by
  // fuzz/jsonl_fuzzer): still a 400, not a 500.
  try {
    parse_completion_request(R"({"prompt": "a", "temperature": 1e400})", "m");
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
  }
}

TEST(StreamText, HoldsBackAPossibleStopStringAndHalfCharacters) {
  EXPECT_EQ(sendable_text_end("hello", 0, 0, false), 5u);
  EXPECT_EQ(sendable_text_end("hello", 0, 3, false), 3u);   // "lo" could start "lo!"
  EXPECT_EQ(sendable_text_end("hello", 4, 3, false), 4u);   // never below what was sent
  EXPECT_EQ(sendable_text_end("hello", 0, 3, true), 5u);
  const std::string euro = "a\xE2\x82\xAC";                 // "a€"
  EXPECT_EQ(complete_utf8_prefix(euro), 4u);
  EXPECT_EQ(complete_utf8_prefix(euro.substr(0, 3)), 1u);   // € half written
  EXPECT_EQ(complete_utf8_prefix(euro.substr(0, 2)), 1u);
  EXPECT_EQ(complete_utf8_prefix("\x82\x82"), 2u);          // stray continuation bytes: nothing to wait for
  EXPECT_EQ(sendable_text_end(euro.substr(0, 3), 0, 0, false), 1u);
}

TEST(ServerMetrics, RendersPrometheusTextWithCumulativeBuckets) {
  ServerMetrics metrics("m");
  RequestOutput out;
  out.finish_reason = FinishReason::kLength;
  out.num_prompt_tokens = 5;
  out.output_tokens = {1, 2, 3};
  out.ttft = 0.003;
  out.mean_tpot = 0.02;
  out.arrival_time = 1.0;
  out.finish_time = 1.5;
  out.kv_kept_fraction = 0.4;
  out.blocks_freed_by_pruning = 2;
  metrics.observe_finished(out);
  metrics.observe_refused(503);
  StepStats step;
  step.num_preemptions = 2;
  step.num_recomputed_tokens = 9;
  step.num_admissions_refused_for_blocks = 1;
  step.blocks_freed_by_pruning = 2;
  metrics.observe_step(step);
  metrics.observe_state(3, 4, 25, 100);
  const std::string text = metrics.render();
  for (const char* line : {"prunekv:num_requests_running{model_name=\"m\"} 3\n",
                           "prunekv:num_requests_waiting{model_name=\"m\"} 4\n",
                           "prunekv:kv_cache_usage_perc{model_name=\"m\"} 0.25\n",
                           "prunekv:num_preemptions_total{model_name=\"m\"} 2\n",
                           "prunekv:prompt_tokens_total{model_name=\"m\"} 5\n",
                           "prunekv:generation_tokens_total{model_name=\"m\"} 3\n",
                           "prunekv:request_success_total{model_name=\"m\",finished_reason=\"length\"} 1\n",
                           "prunekv:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.001\"} 0\n",
                           "prunekv:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.005\"} 1\n",
                           "prunekv:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 1\n",
                           "prunekv:e2e_request_latency_seconds_sum{model_name=\"m\"} 0.5\n",
                           "prunekv:kv_kept_fraction_count{model_name=\"m\"} 1\n",
                           "prunekv:blocks_freed_by_pruning_total{model_name=\"m\"} 2\n",
                           "prunekv:recomputed_tokens_total{model_name=\"m\"} 9\n",
                           "prunekv:admissions_refused_for_blocks_total{model_name=\"m\"} 1\n",
                           "prunekv:http_requests_refused_total{model_name=\"m\",status=\"503\"} 1\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
}

TEST(SseParser, SplitsEventsAcrossPieces) {
  bench::SseParser parser;
  std::vector<std::string> events;
  parser.feed("data: {\"a\"", events);
  EXPECT_TRUE(events.empty());
  parser.feed(": 1}\n\ndata: [DO", events);
  parser.feed("NE]\n\n", events);
  EXPECT_EQ(events, (std::vector<std::string>{"{\"a\": 1}", "[DONE]"}));
}

TEST(ServerUrl, AcceptsIpLiteralsAndLocalhostOnly) {
  EXPECT_EQ(bench::parse_server_url("http://127.0.0.1:8000").port, 8000);
  EXPECT_EQ(bench::parse_server_url("http://localhost:9/").host, "127.0.0.1");
  for (const char* bad : {"127.0.0.1:8000", "http://example.com:80", "http://127.0.0.1", "http://127.0.0.1:0",
                          "http://127.0.0.1:8000/v1"})
    EXPECT_THROW(bench::parse_server_url(bad), InputError) << bad;
}

}  // namespace
}  // namespace prunekv::server
