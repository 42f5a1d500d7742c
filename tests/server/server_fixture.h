#pragma once
// A real `prunekv serve` in-process on 127.0.0.1 (an ephemeral port) over the real stories260K
// model, and the helpers the server tests share: completions over HTTP, streamed or not.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/http_client.h"
#include "common/error.h"
#include "model/model.h"
#include "scheduler/transformer_runner.h"
#include "server/http_server.h"
#include "tests/testing/model_paths.h"

namespace prunekv::testing {

// The real runner, slowed by a fixed pause per forward step, so that a test can hang up or shut
// down while a request is surely still running (stories260K alone makes ~30k tokens/s).
class PausingRunner : public ModelRunner {
 public:
  PausingRunner(ModelRunner& inner, std::chrono::microseconds pause) : inner_(inner), pause_(pause) {}
  KvLayout kv_layout(uint32_t block_size) const override { return inner_.kv_layout(block_size); }
  uint32_t num_query_heads() const override { return inner_.num_query_heads(); }
  uint32_t context_length() const override { return inner_.context_length(); }
  uint32_t vocab_size() const override { return inner_.vocab_size(); }
  std::span<const TokenId> stop_tokens() const override { return inner_.stop_tokens(); }
  const Tokenizer* tokenizer() const override { return inner_.tokenizer(); }
  void execute(const StepBatch& batch, std::span<Sampler* const> samplers, std::vector<TokenId>& next) override {
    std::this_thread::sleep_for(pause_);
    inner_.execute(batch, samplers, next);
  }
  double now() const override { return inner_.now(); }
  void wait_until(double time) override { inner_.wait_until(time); }

 private:
  ModelRunner& inner_;
  std::chrono::microseconds pause_;
};

class ServerFixture : public ::testing::Test {
 protected:
  // Loads the model once per test; start() builds the server.
  void SetUp() override {
    PKV_REQUIRE_SHARED_FILE(model_path("stories260K.bin"));
    LoadOptions options;
    options.tokenizer_path = model_path("tok512.bin");
    load(model_path("stories260K.bin"), options);
  }
  // Serves another model file (before start()).
  void load(const std::string& path, const LoadOptions& options = {}) {
    runner_.reset();
    model_ = load_model(path, options);
    runner_ = std::make_unique<TransformerRunner>(*model_, num_threads());
  }
  void TearDown() override {
    server_.reset();
    pausing_.reset();
    runner_.reset();
  }

  // `pause` > 0 serves through a PausingRunner.
  void start(EngineConfig config = default_config(), server::ServerOptions options = {},
             std::chrono::microseconds pause = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.model_name = "stories260K";
    options.status_interval_seconds = 0;
    ModelRunner* runner = runner_.get();
    if (pause.count() > 0) runner = (pausing_ = std::make_unique<PausingRunner>(*runner_, pause)).get();
    server_ = std::make_unique<server::HttpServer>(*runner, std::move(config), options);
  }
  // One worker under ThreadSanitizer: libtbb is not instrumented, so its task handoffs look like
  // races to TSan; the server's own threads are what the concurrency test is about.
  static int num_threads() {
#if defined(__SANITIZE_THREAD__)
    return 1;
#else
    return 2;
#endif
  }
  static EngineConfig default_config() {
    EngineConfig config;
    config.kv_memory_bytes = 32ull << 20;
    config.num_threads = num_threads();
    return config;
  }
  bench::ServerAddress address() const { return {"127.0.0.1", server_->port()}; }

  // A completion, not streamed: (status, parsed body).
  static std::pair<int, nlohmann::json> complete(bench::HttpClient& client, const nlohmann::json& body) {
    const bench::HttpResponse r = client.post("/v1/completions", body.dump());
    return {r.status, nlohmann::json::parse(r.body)};
  }

  struct Streamed {
    int status = 0;
    std::vector<nlohmann::json> chunks;  // every event but [DONE]
    bool done = false;                   // [DONE] seen
    std::string text;                    // the chunks' texts concatenated
    std::vector<int> token_ids;          // the chunks' token_ids concatenated
    nlohmann::json error;                // the body of a non-200 answer
  };
  // A streamed completion; hang_up_after > 0 closes the connection after that many events.
  // Safe from many threads at once (one client each).
  // A chat stream's chunks carry their text in "delta"."content".
  static Streamed stream(bench::HttpClient& client, nlohmann::json body, size_t hang_up_after = 0,
                         const std::string& path = "/v1/completions") {
    body["stream"] = true;
    Streamed s;
    bench::SseParser parser;
    std::vector<std::string> events;
    std::string raw;
    size_t consumed = 0;
    s.status = client.post_streaming(path, body.dump(), [&](std::string_view data) {
      raw.append(data);
      parser.feed(data, events);
      for (; consumed < events.size(); ++consumed) {
        const std::string& e = events[consumed];
        if (e == "[DONE]") {
          s.done = true;
          continue;
        }
        nlohmann::json chunk = nlohmann::json::parse(e);
        for (const auto& choice : chunk["choices"]) {
          if (choice.contains("delta")) {
            if (choice["delta"].contains("content")) s.text += choice["delta"]["content"].get<std::string>();
          } else {
            s.text += choice["text"].get<std::string>();
          }
          if (choice.contains("token_ids"))
            for (int t : choice["token_ids"]) s.token_ids.push_back(t);
        }
        s.chunks.push_back(std::move(chunk));
      }
      return hang_up_after == 0 || s.chunks.size() < hang_up_after;
    });
    if (s.status != 200) s.error = nlohmann::json::parse(raw, nullptr, false);
    return s;
  }

  // The value of one sample line of GET /metrics, e.g.
  // "prunekv:num_requests_running{model_name=\"stories260K\"}"; -1 when absent.
  static double metric(const std::string& metrics_text, const std::string& sample) {
    const size_t at = metrics_text.find("\n" + sample + " ");
    if (at == std::string::npos) return -1;
    return std::stod(metrics_text.substr(at + sample.size() + 2));
  }
  static std::string sample(const std::string& name, const std::string& extra_labels = "") {
    return name + "{model_name=\"stories260K\"" + (extra_labels.empty() ? "" : "," + extra_labels) + "}";
  }
  // Polls /metrics (at most 10 s) until nothing runs or waits and no KV block is in use; returns
  // the last text.
  std::string wait_until_idle(bench::HttpClient& client) {
    std::string text;
    for (int i = 0; i < 1000; ++i) {
      text = client.get("/metrics").body;
      if (metric(text, sample("prunekv:num_requests_running")) == 0 &&
          metric(text, sample("prunekv:num_requests_waiting")) == 0 &&
          metric(text, sample("prunekv:kv_cache_usage_perc")) == 0 && server_->metrics().snapshot().blocks_used == 0)
        return text;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "server not idle after 10 s:\n" << text;
    return text;
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<TransformerRunner> runner_;
  std::unique_ptr<PausingRunner> pausing_;
  std::unique_ptr<server::HttpServer> server_;
};

}  // namespace prunekv::testing
