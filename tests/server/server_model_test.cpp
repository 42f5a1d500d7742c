// `prunekv serve` end to end on 127.0.0.1 with the real stories260K model: the 60 golden prompts
// over HTTP (streamed and not), the endpoints, a table of bad input while a good client keeps
// being served, a full queue, a pool too small for a prompt, a client that hangs up, a client
// that sends nothing, pipelined requests, a drain, and chat completions through a GGUF's chat
// template.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "bench/serving_bench.h"
#include "tests/server/server_fixture.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/golden.h"

namespace prunekv::testing {
namespace {

using nlohmann::json;

class ServerModel : public ServerFixture {};

TEST_F(ServerModel, GoldenPromptsOverHttpStreamedAndNot) {
  PKV_REQUIRE_SHARED_FILE(golden_path());
  const std::vector<GoldenCase> cases = load_golden();
  ASSERT_EQ(cases.size(), 60u);
  start();
  bench::HttpClient client(address());
  for (const GoldenCase& c : cases) {
    SCOPED_TRACE(c.id);
    // Not streamed, from the prompt text.
    const auto [status, body] = complete(client, {{"model", "stories260K"}, {"prompt", c.prompt},
                                                  {"max_tokens", c.max_tokens}, {"temperature", 0},
                                                  {"return_token_ids", true}});
    ASSERT_EQ(status, 200) << body.dump();
    const json& choice = body["choices"][0];
    EXPECT_EQ(choice["token_ids"].get<std::vector<TokenId>>(), c.output_tokens);
    EXPECT_EQ(choice["finish_reason"], c.finish_reason);
    EXPECT_EQ(choice["text"], c.output_text);
    EXPECT_EQ(body["usage"]["prompt_tokens"], c.prompt_tokens.size());
    EXPECT_EQ(body["usage"]["completion_tokens"], c.output_tokens.size());
    EXPECT_EQ(body["prunekv"]["kv_kept_fraction"], 1.0);

    // Streamed, from the prompt token ids, with usage.
    const Streamed s = stream(client, {{"prompt", c.prompt_tokens}, {"max_tokens", c.max_tokens},
                                       {"temperature", 0}, {"return_token_ids", true},
                                       {"stream_options", {{"include_usage", true}}}});
    ASSERT_EQ(s.status, 200) << s.error.dump();
    EXPECT_TRUE(s.done);
    EXPECT_EQ(s.token_ids, std::vector<int>(c.output_tokens.begin(), c.output_tokens.end()));
    EXPECT_EQ(s.text, choice["text"].get<std::string>());
    // One chunk per token (a stop token adds a last chunk with no token), then the usage chunk.
    const size_t token_chunks = c.output_tokens.size() + (c.finish_reason == "stop" ? 1 : 0);
    ASSERT_EQ(s.chunks.size(), token_chunks + 1);
    EXPECT_EQ(s.chunks[token_chunks - 1]["choices"][0]["finish_reason"], c.finish_reason);
    EXPECT_TRUE(s.chunks[token_chunks - 1].contains("prunekv"));
    EXPECT_TRUE(s.chunks.back()["choices"].empty());
    EXPECT_EQ(s.chunks.back()["usage"]["completion_tokens"], c.output_tokens.size());
  }
  const std::string metrics = wait_until_idle(client);
  EXPECT_EQ(metric(metrics, sample("prunekv:request_success_total", "finished_reason=\"stop\"")) +
                metric(metrics, sample("prunekv:request_success_total", "finished_reason=\"length\"")),
            120);
  // A request whose first token is a stop token has no first-token time.
  const auto with_tokens = std::count_if(cases.begin(), cases.end(), [](const auto& c) { return !c.output_tokens.empty(); });
  EXPECT_EQ(metric(metrics, sample("prunekv:time_to_first_token_seconds_count")), 2 * with_tokens);
}

TEST_F(ServerModel, StopStringsCutTheStreamWhereTheyCutTheText) {
  start();
  bench::HttpClient client(address());
  const json request = {{"prompt", "Once upon a time"}, {"max_tokens", 60}, {"stop", {"Lily", "play"}}};
  const auto [status, body] = complete(client, request);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  const std::string text = body["choices"][0]["text"];
  EXPECT_EQ(text.find("Lily"), std::string::npos);
  EXPECT_FALSE(text.empty());
  const Streamed s = stream(client, request);
  EXPECT_EQ(s.text, text);
  EXPECT_TRUE(s.done);
}

TEST_F(ServerModel, Endpoints) {
  start();
  bench::HttpClient client(address());
  const auto health = client.get("/health");
  EXPECT_EQ(health.status, 200);
  const auto models = client.get("/v1/models");
  ASSERT_EQ(models.status, 200);
  const json list = json::parse(models.body);
  EXPECT_EQ(list["data"][0]["id"], "stories260K");
  EXPECT_EQ(list["data"][0]["max_model_len"], 512);
  const auto metrics = client.get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.content_type.find("text/plain"), std::string::npos);
  for (const char* name :
       {"prunekv:num_requests_running", "prunekv:num_requests_waiting", "prunekv:kv_cache_usage_perc",
        "prunekv:num_preemptions_total", "prunekv:prompt_tokens_total", "prunekv:generation_tokens_total",
        "prunekv:blocks_freed_by_pruning_total", "prunekv:recomputed_tokens_total",
        "prunekv:admissions_refused_for_blocks_total"})
    EXPECT_EQ(metric(metrics.body, sample(name)), 0) << name;
  for (const char* name : {"prunekv:time_to_first_token_seconds", "prunekv:time_per_output_token_seconds",
                           "prunekv:e2e_request_latency_seconds", "prunekv:kv_kept_fraction"})
    EXPECT_NE(metrics.body.find(std::string("# TYPE ") + name + " histogram"), std::string::npos) << name;
  const auto chat = client.post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_EQ(chat.status, 400);
  EXPECT_NE(chat.body.find("no chat template"), std::string::npos) << chat.body;
}

// Llama 2's template separates turns with </s><s>: the chat endpoint sends their ids (stories260K's
// GGUF marks them CONTROL), as llama.cpp does, where /v1/completions keeps the same text as text.
TEST_F(ServerModel, ChatPromptsGetTheTemplatesSpecialTokenIds) {
  PKV_REQUIRE_SHARED_FILE(model_path("stories260K-f32.gguf"));
  load(model_path("stories260K-f32.gguf"));
  server::ServerOptions options;
  options.chat_template = "llama2";  // as --chat-template llama2
  start(default_config(), options);
  bench::HttpClient client(address());
  const json messages = json::array({{{"role", "user"}, {"content", "Once upon a time"}},
                                     {{"role", "assistant"}, {"content", "there was a cat."}},
                                     {{"role", "user"}, {"content", "Tell me more"}}});
  const std::string rendered =
      "[INST] Once upon a time [/INST] there was a cat. </s><s>[INST] Tell me more [/INST]";
  const Tokenizer& tok = *model_->tokenizer;
  std::vector<TokenId> ids = tok.encode(rendered, true, /*parse_special=*/true);
  ASSERT_EQ(std::count(ids.begin(), ids.end(), tok.eos_id()), 1);
  ASSERT_EQ(std::count(ids.begin(), ids.end(), tok.bos_id()), 2);

  const json sampling = {{"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}};
  json chat_body = sampling;
  chat_body["messages"] = messages;
  const auto chat = client.post("/v1/chat/completions", chat_body.dump());
  ASSERT_EQ(chat.status, 200) << chat.body;
  const json answer = json::parse(chat.body);
  EXPECT_EQ(answer["usage"]["prompt_tokens"], ids.size());

  json by_ids = sampling;
  by_ids["prompt"] = ids;
  const auto [status, completion] = complete(client, by_ids);
  ASSERT_EQ(status, 200) << completion.dump();
  EXPECT_EQ(answer["choices"][0]["message"]["content"], completion["choices"][0]["text"]);

  json as_text = sampling;
  as_text["prompt"] = rendered;
  const auto [text_status, text_completion] = complete(client, as_text);
  ASSERT_EQ(text_status, 200) << text_completion.dump();
  EXPECT_GT(text_completion["usage"]["prompt_tokens"].get<size_t>(), ids.size());  // "</s><s>" spelled out
}

// A GGUF carrying a chatml template: /v1/chat/completions renders the messages with it and
// answers exactly what /v1/completions answers for the rendered prompt, streamed and not.
TEST_F(ServerModel, ChatCompletionsRenderTheModelsTemplate) {
  PKV_REQUIRE_SHARED_FILE(model_path("stories260K-f32.gguf"));
  const TempDir dir;
  const std::string chatml =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
      "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  copy_gguf_with_string(model_path("stories260K-f32.gguf"), dir.file("chat.gguf"), "tokenizer.chat_template", chatml);
  load(dir.file("chat.gguf").string());
  ASSERT_EQ(model_->chat_template, chatml);
  server::ServerOptions options;
  options.chat_template = model_->chat_template;
  start(default_config(), options);
  bench::HttpClient client(address());

  const json messages = json::array({{{"role", "system"}, {"content", "You tell stories."}},
                                     {{"role", "user"}, {"content", "Once upon a time"}}});
  const json sampling = {{"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}};
  json chat_body = sampling;
  chat_body["messages"] = messages;
  const auto chat = client.post("/v1/chat/completions", chat_body.dump());
  ASSERT_EQ(chat.status, 200) << chat.body;
  const json answer = json::parse(chat.body);
  EXPECT_EQ(answer["object"], "chat.completion");
  EXPECT_EQ(answer["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  const json& choice = answer["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_EQ(answer["usage"]["completion_tokens"], 24);
  EXPECT_TRUE(answer["prunekv"].contains("kv_kept_fraction"));

  // The rendered prompt, written from ChatML's documentation.
  json completion_body = sampling;
  completion_body["prompt"] =
      "<|im_start|>system\nYou tell stories.<|im_end|>\n<|im_start|>user\nOnce upon a time<|im_end|>\n"
      "<|im_start|>assistant\n";
  const auto [status, completion] = complete(client, completion_body);
  ASSERT_EQ(status, 200) << completion.dump();
  EXPECT_EQ(choice["message"]["content"], completion["choices"][0]["text"]);
  EXPECT_FALSE(completion["choices"][0]["text"].get<std::string>().empty());
  EXPECT_EQ(answer["usage"], completion["usage"]);

  chat_body["stream_options"] = {{"include_usage", true}};
  const Streamed streamed = stream(client, chat_body, 0, "/v1/chat/completions");
  ASSERT_EQ(streamed.status, 200) << streamed.error.dump();
  EXPECT_TRUE(streamed.done);
  ASSERT_GE(streamed.chunks.size(), 3u);
  EXPECT_EQ(streamed.chunks.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(streamed.chunks.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(streamed.text, choice["message"]["content"]);
  EXPECT_EQ(streamed.chunks.back()["usage"], answer["usage"]);

  struct Case {
    json body;
    std::string param;
  };
  for (const Case& c : {Case{{{"messages", "hi"}}, "messages"},
                        Case{{{"messages", json::array()}}, "messages"},
                        Case{{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}, "messages[0].role"},
                        Case{{{"messages", {{{"role", "user"}, {"content", 5}}}}}, "messages[0].content"},
                        Case{{{"messages", {{{"role", "user"}}}}}, "messages[0].content"},
                        Case{{{"prompt", "x"}}, "prompt"}}) {
    SCOPED_TRACE(c.body.dump());
    const auto r = client.post("/v1/chat/completions", c.body.dump());
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body)["error"]["param"], c.param) << r.body;
  }
  wait_until_idle(client);
}

// A template none of the known formats' markers match is refused, not guessed at.
TEST_F(ServerModel, ChatWithAnUnknownTemplateGets400) {
  server::ServerOptions options;
  options.chat_template = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";
  start(default_config(), options);
  bench::HttpClient client(address());
  const auto chat = client.post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_EQ(chat.status, 400);
  EXPECT_NE(chat.body.find("does not recognise"), std::string::npos) << chat.body;
}

TEST_F(ServerModel, PruningIsReportedPerResponseAndInMetrics) {
  start();
  bench::HttpClient client(address());
  const std::vector<GoldenCase> cases = load_golden();
  ASSERT_FALSE(cases.empty());
  const auto [status, body] =
      complete(client, {{"prompt", cases[0].prompt}, {"max_tokens", 8}, {"policy", "snapkv:0.25"}});
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_LT(body["prunekv"]["kv_kept_fraction"].get<double>(), 0.5);
  EXPECT_GT(body["prunekv"]["blocks_freed_by_pruning"].get<int>(), 0);
  const std::string metrics = wait_until_idle(client);
  EXPECT_EQ(metric(metrics, sample("prunekv:blocks_freed_by_pruning_total")),
            body["prunekv"]["blocks_freed_by_pruning"].get<double>());
  EXPECT_EQ(metric(metrics, sample("prunekv:kv_kept_fraction_count")), 1);
}

struct BadInput {
  const char* name;
  std::string raw;  // a whole HTTP request, or empty to post `body` to /v1/completions
  std::string body;
  int status;
  const char* message;  // a substring of the answer
};

TEST_F(ServerModel, BadInputGetsItsStatusAndMessageWhileAGoodClientIsServed) {
  start();
  std::string too_long = "[1";
  for (int i = 0; i < 600; ++i) too_long += ",300";
  too_long += "]";
  const std::vector<BadInput> table = {
      {"malformed JSON", "", "{\"prompt\": ", 400, "malformed JSON"},
      {"not an object", "", "[1, 2]", 400, "expected a JSON object"},
      {"missing prompt", "", "{\"max_tokens\": 4}", 400, "missing field \\\"prompt\\\""},
      {"prompt wrong type", "", "{\"prompt\": 5}", 400, "field \\\"prompt\\\""},
      {"prompt empty", "", "{\"prompt\": \"\"}", 400, "field \\\"prompt\\\""},
      {"prompt ids negative", "", "{\"prompt\": [1, -3]}", 400, "field \\\"prompt\\\""},
      {"negative max_tokens", "", "{\"prompt\": \"a\", \"max_tokens\": -1}", 400, "field \\\"max_tokens\\\""},
      {"max_tokens as text", "", "{\"prompt\": \"a\", \"max_tokens\": \"9\"}", 400, "field \\\"max_tokens\\\""},
      {"temperature wrong type", "", "{\"prompt\": \"a\", \"temperature\": \"hot\"}", 400, "field \\\"temperature\\\""},
      {"top_p zero", "", "{\"prompt\": \"a\", \"top_p\": 0}", 400, "field \\\"top_p\\\""},
      {"n of two", "", "{\"prompt\": \"a\", \"n\": 2}", 400, "field \\\"n\\\""},
      {"stream not a bool", "", "{\"prompt\": \"a\", \"stream\": \"yes\"}", 400, "field \\\"stream\\\""},
      {"stream_options without stream", "", "{\"prompt\": \"a\", \"stream_options\": {\"include_usage\": true}}",
       400, "field \\\"stream_options\\\""},
      {"stop not strings", "", "{\"prompt\": \"a\", \"stop\": [1]}", 400, "field \\\"stop\\\""},
      {"unknown field", "", "{\"prompt\": \"a\", \"promtp\": \"b\"}", 400, "unknown field \\\"promtp\\\""},
      {"unsupported logprobs", "", "{\"prompt\": \"a\", \"logprobs\": 3}", 400, "not supported"},
      {"invalid UTF-8", "", "{\"prompt\": \"\xff\xfe\"}", 400, "malformed JSON"},
      {"wrong model", "", "{\"model\": \"gpt-4\", \"prompt\": \"a\"}", 404, "does not exist"},
      {"unknown policy", "", "{\"prompt\": \"a\", \"policy\": \"nope\"}", 400, "nope"},
      {"token id out of range", "", "{\"prompt\": [1, 100000]}", 400, "out of range"},
      {"prompt longer than the context", "", "{\"prompt\": " + too_long + "}", 400, "context"},
      {"prompt + max_tokens over the context", "", "{\"prompt\": \"a\", \"max_tokens\": 600}", 400, "context"},
      // The header announces 2 MiB: refused before the body is read.
      {"huge body",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n{\"prompt\": \"", "",
       413, "body over"},
      {"malformed HTTP", "GARBAGE\r\n\r\n", "", 400, "malformed HTTP"},
      {"wrong method", "GET /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n", "", 405, "expected method POST"},
      {"unknown path", "GET /v2/nothing HTTP/1.1\r\nHost: x\r\n\r\n", "", 404, "no route"},
  };

  // A good client in parallel (bounded loop): every answer must be the same greedy text.
  std::atomic<bool> stop{false};
  std::atomic<int> good_served{0}, good_wrong{0};
  std::string expected;
  {
    bench::HttpClient client(address());
    expected = complete(client, {{"prompt", "Once upon a time"}, {"max_tokens", 12}}).second["choices"][0]["text"];
  }
  // Stops and joins the good client however the test body ends.
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread thread;
    ~Joiner() {
      stop.store(true);
      if (thread.joinable()) thread.join();
    }
  };
  Joiner good{stop, std::thread([&] {
    bench::HttpClient client(address());
    for (int i = 0; i < 2000 && !stop.load(); ++i) {
      const auto [status, body] = complete(client, {{"prompt", "Once upon a time"}, {"max_tokens", 12}});
      if (status == 200 && body["choices"][0]["text"] == expected) {
        ++good_served;
      } else {
        ++good_wrong;
      }
    }
  })};
  bench::HttpClient client(address());
  for (const BadInput& bad : table) {
    SCOPED_TRACE(bad.name);
    const bench::HttpResponse r =
        bad.raw.empty() ? client.post("/v1/completions", bad.body) : client.send_raw(bad.raw);
    EXPECT_EQ(r.status, bad.status) << r.body;
    EXPECT_NE(r.body.find(bad.message), std::string::npos) << r.body;
    const json error = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(error.contains("error")) << r.body;
    // Streamed, the same request gets the same answer before any event.
    if (bad.raw.empty() && bad.status == 400 && json::accept(bad.body) && json::parse(bad.body).is_object() &&
        !json::parse(bad.body).contains("stream")) {
      json body = json::parse(bad.body);
      if (body.contains("stream_options")) continue;
      const Streamed s = stream(client, body);
      EXPECT_EQ(s.status, bad.status);
      EXPECT_TRUE(s.chunks.empty());
    }
  }
  for (int i = 0; i < 1000 && good_served.load() < 3; ++i)  // the table alone may beat the first answer
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop.store(true);
  good.thread.join();
  EXPECT_GT(good_served.load(), 0);
  EXPECT_EQ(good_wrong.load(), 0);
  wait_until_idle(client);
}

TEST_F(ServerModel, PromptThePoolCanNeverHoldGets400) {
  EngineConfig config = default_config();
  config.kv_memory_bytes = 0;
  config.num_kv_blocks = 40;  // 20 lists x 2 blocks: 32 positions
  start(config);
  bench::HttpClient client(address());
  const auto [status, body] = complete(client, {{"prompt", "Once upon a time"}, {"max_tokens", 100}});
  EXPECT_EQ(status, 400);
  EXPECT_NE(body["error"]["message"].get<std::string>().find("whole pool holds"), std::string::npos) << body.dump();
  const auto [ok, fits] = complete(client, {{"prompt", "Once upon a time"}, {"max_tokens", 8}});
  EXPECT_EQ(ok, 200) << fits.dump();
}

TEST_F(ServerModel, FullQueueGets503WithRetryAfter) {
  EngineConfig config = default_config();
  config.max_num_seqs = 1;
  server::ServerOptions options;
  options.max_queued_requests = 1;
  start(config, options);
  const json long_request = {{"prompt", "Once"}, {"max_tokens", 400}, {"ignore_eos", true}};
  // A runs (its first event arrived), B waits behind it; C finds the queue full.
  std::atomic<int> events_a{0};
  std::atomic<bool> hang_up{false};
  auto run_streaming = [&](std::atomic<int>* events) {
    bench::HttpClient c(address());
    json body = long_request;
    body["stream"] = true;
    c.post_streaming("/v1/completions", body.dump(), [&](std::string_view) {
      if (events) ++*events;
      return !hang_up.load();
    });
  };
  std::thread a(run_streaming, &events_a);
  for (int i = 0; i < 1000 && events_a.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GT(events_a.load(), 0);
  std::thread b(run_streaming, nullptr);
  bench::HttpClient client(address());
  for (int i = 0; i < 1000; ++i) {  // until B waits (bounded)
    if (metric(client.get("/metrics").body, sample("prunekv:num_requests_waiting")) == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bench::HttpResponse busy = client.post("/v1/completions", long_request.dump());
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.retry_after, "1");
  EXPECT_NE(busy.body.find("--max-queued-requests"), std::string::npos) << busy.body;
  hang_up.store(true);
  a.join();
  b.join();
  const std::string metrics = wait_until_idle(client);
  EXPECT_GE(metric(metrics, "prunekv:http_requests_refused_total{model_name=\"stories260K\",status=\"503\"}"), 1);
}

// A raw TCP connection to the server (127.0.0.1:port) whose reads give up after 10 s.
int connect_raw(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  timeval limit{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return fd;
}

// A raw TCP connection to the server that sends `bytes` and then nothing: the seconds until the
// server closes it (recv sees the end), or -1 when it is still open after 10 s.
double seconds_until_closed(uint16_t port, const std::string& bytes) {
  const int fd = connect_raw(port);
  const auto start = std::chrono::steady_clock::now();
  if (!bytes.empty()) {
    EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
  }
  char c;
  const ssize_t n = ::recv(fd, &c, 1, 0);
  const bool closed = n == 0 || (n < 0 && errno == ECONNRESET);
  ::close(fd);
  return closed ? std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() : -1;
}

// Sends `pieces` `pause` apart and returns everything the server sends until it closes the
// connection (or 10 s pass without a byte).
std::string answer_until_closed(uint16_t port, const std::vector<std::string>& pieces,
                                std::chrono::milliseconds pause) {
  const int fd = connect_raw(port);
  for (const std::string& bytes : pieces) {
    if (&bytes != &pieces.front()) std::this_thread::sleep_for(pause);
    EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
  }
  std::string answer;
  char piece[4096];
  for (ssize_t n; (n = ::recv(fd, piece, sizeof piece, 0)) > 0;) answer.append(piece, size_t(n));
  ::close(fd);
  return answer;
}

TEST_F(ServerModel, PipelinedRequestsAreAnsweredInOrder) {
  // 5 ms per step, requests 20 ms apart: each request behind the first most likely arrives while
  // the one before it is still being answered (and is read then, into the request buffer). The
  // answers must not depend on that timing.
  start(default_config(), {}, std::chrono::milliseconds(5));
  const json request = {{"prompt", "Once upon a time"}, {"max_tokens", 12}, {"temperature", 0}};
  std::string expected;
  {
    bench::HttpClient client(address());
    expected = complete(client, request).second["choices"][0]["text"];
  }
  json streamed = request;
  streamed["stream"] = true;
  auto post = [](const json& body) {
    return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.dump().size()) + "\r\n\r\n" + body.dump();
  };
  const std::string answer =
      answer_until_closed(server_->port(),
                          {post(request), post(streamed), "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
                          std::chrono::milliseconds(20));
  // In order: the whole answer, the stream to its end, the health check.
  size_t at = 0;
  for (const std::string& part : {std::string("HTTP/1.1 200 OK"), "\"text\":" + json(expected).dump(),
                                  std::string("HTTP/1.1 200 OK"), std::string("text/event-stream"),
                                  std::string("data: [DONE]"), std::string("HTTP/1.1 200 OK"),
                                  std::string("{\"status\":\"ok\"}")}) {
    const size_t found = answer.find(part, at);
    ASSERT_NE(found, std::string::npos) << part << " after byte " << at << " of:\n" << answer;
    at = found + part.size();
  }
  bench::HttpClient watcher(address());
  wait_until_idle(watcher);
}

TEST_F(ServerModel, AClientThatSendsNothingIsDisconnectedAtTheReadTimeout) {
  server::ServerOptions options;
  options.read_timeout_seconds = 0.3;
  start(default_config(), options);
  const double idle = seconds_until_closed(server_->port(), "");
  EXPECT_GE(idle, 0.25);
  EXPECT_LT(idle, 5.0);
  // Half a request (headers never finished) is no better.
  const double partial = seconds_until_closed(server_->port(), "POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
  EXPECT_GE(partial, 0.25);
  EXPECT_LT(partial, 5.0);
  // The server goes on serving.
  bench::HttpClient client(address());
  for (int i = 0; i < 3; ++i) {
    const auto [status, body] = complete(client, {{"prompt", "Once"}, {"max_tokens", 4}, {"temperature", 0}});
    EXPECT_EQ(status, 200) << body.dump();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  wait_until_idle(client);
}

TEST_F(ServerModel, ClientThatHangsUpCancelsItsRequest) {
  start(default_config(), {}, std::chrono::milliseconds(2));  // 480 tokens: about a second
  bench::HttpClient client(address());
  const Streamed s = stream(client, {{"prompt", "Once"}, {"max_tokens", 480}, {"ignore_eos", true}}, 2);
  EXPECT_GE(s.chunks.size(), 2u);
  EXPECT_FALSE(s.done);
  bench::HttpClient watcher(address());
  const std::string metrics = wait_until_idle(watcher);
  EXPECT_EQ(metric(metrics, sample("prunekv:request_success_total", "finished_reason=\"abort\"")), 1);
  EXPECT_LT(metric(metrics, sample("prunekv:generation_tokens_total")), 480);
}

TEST_F(ServerModel, ShutdownCancelsWhatRunsAfterTheDrainAndAnswersIt) {
  start(default_config(), {}, std::chrono::milliseconds(2));  // 480 tokens: about a second
  Streamed s;
  std::thread client_thread([&] {
    bench::HttpClient client(address());
    s = stream(client, {{"prompt", "Once"}, {"max_tokens", 480}, {"ignore_eos", true}});
  });
  bench::HttpClient watcher(address());
  for (int i = 0; i < 1000; ++i) {  // until it runs (bounded)
    if (metric(watcher.get("/metrics").body, sample("prunekv:num_requests_running")) == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  watcher.close();
  server_->shutdown(0.05);
  client_thread.join();
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.done);
  ASSERT_FALSE(s.chunks.empty());
  EXPECT_EQ(s.chunks.back()["choices"][0]["finish_reason"], "abort");
  EXPECT_THROW(bench::HttpClient(address()).get("/health"), Error);
}

TEST_F(ServerModel, ServingBenchReplaysRequestsAndCountsWhatCameBack) {
  start(default_config(), {}, std::chrono::milliseconds(1));  // tokens 1 ms apart at least: ITL > 0
  std::vector<RequestSpec> specs(12);
  for (size_t i = 0; i < specs.size(); ++i) {
    specs[i].prompt = i % 2 ? "Once upon a time" : "The cat";
    specs[i].max_tokens = 10;
    specs[i].ignore_eos = true;
  }
  bench::ServingBenchOptions options;
  options.address = address();
  options.max_concurrency = 4;
  options.request_rate = 200;
  const bench::ServingBenchResult r = bench::run_serving_bench(options, specs);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_EQ(r.num_completed, specs.size());
  EXPECT_EQ(r.total_output_tokens, specs.size() * 10);
  EXPECT_GT(r.ttft.mean, 0);
  EXPECT_GT(r.itl.p99, 0);
  EXPECT_GE(r.itl.p99, r.itl.median);
  const std::string text = bench::serving_bench_text(r);
  for (const char* line : {"Successful requests:", "Request throughput (req/s):", "Output token throughput (tok/s):",
                           "Mean TTFT (ms):", "Median TTFT (ms):", "P99 TTFT (ms):", "Mean TPOT (ms):", "P99 ITL (ms):"})
    EXPECT_NE(text.find(line), std::string::npos) << line;
  const bench::LatencySummary s = bench::summarize({4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_DOUBLE_EQ(s.p99, 3.97);
}

}  // namespace
}  // namespace prunekv::testing
