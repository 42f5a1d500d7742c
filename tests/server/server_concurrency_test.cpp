// Load on a real `prunekv serve` (127.0.0.1, stories260K): 64 clients x 10 requests at once, a
// third streamed, a tenth hanging up mid-stream. Every completed request must match the offline
// engine's greedy output, the pool must drain to 0 used blocks, and /metrics must count what the
// clients saw. Runs under TSan in CI (the *_concurrency_test suffix).
#include <atomic>
#include <mutex>
#include <thread>

#include "scheduler/engine.h"
#include "tests/server/server_fixture.h"
#include "tests/testing/golden.h"

namespace prunekv::testing {
namespace {

using nlohmann::json;

class ServerLoad : public ServerFixture {};

TEST_F(ServerLoad, SixtyFourClientsTenRequestsEach) {
  PKV_REQUIRE_SHARED_FILE(golden_path());
  constexpr int kClients = 64, kRequests = 10, kPromptTokens = 32, kMaxTokens = 12, kHangUpMaxTokens = 200;
  const std::vector<GoldenCase> cases = load_golden();
  ASSERT_GE(cases.size(), 8u);
  // Eight prompts of 32 tokens and their greedy continuations from the offline engine.
  std::vector<std::vector<TokenId>> prompts;
  std::vector<RequestSpec> specs;
  for (size_t i = 0; i < 8; ++i) {
    prompts.emplace_back(cases[i].prompt_tokens.begin(), cases[i].prompt_tokens.begin() + kPromptTokens);
    RequestSpec spec;
    spec.prompt_tokens = prompts.back();
    spec.max_tokens = kMaxTokens;
    specs.push_back(spec);
  }
  const std::vector<RequestOutput> expected = generate(*runner_, default_config(), specs);

  // A pause per step keeps the hung-up requests (200 tokens) running long enough to be cancelled.
  start(default_config(), {}, std::chrono::microseconds(500));
  std::mutex mutex;
  int completed = 0, hung_up = 0;
  size_t completion_tokens = 0;
  std::vector<std::string> failures;
  auto fail = [&](std::string what) {
    std::lock_guard lock(mutex);
    failures.push_back(std::move(what));
  };
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      bench::HttpClient client(address());
      for (int r = 0; r < kRequests; ++r) {  // bounded: 10 requests per client
        const int k = c * kRequests + r;
        const size_t p = size_t(k) % prompts.size();
        const RequestOutput& want = expected[p];
        try {
          if (k % 10 == 5) {  // a tenth: hang up after two events of a long stream
            stream(client, {{"prompt", prompts[p]}, {"max_tokens", kHangUpMaxTokens}, {"ignore_eos", true}}, 2);
            std::lock_guard lock(mutex);
            ++hung_up;
            continue;
          }
          json body = {{"prompt", prompts[p]}, {"max_tokens", kMaxTokens}, {"return_token_ids", true}};
          std::vector<TokenId> tokens;
          std::string text;
          if (k % 3 == 0) {  // a third streamed
            const Streamed s = stream(client, body);
            if (s.status != 200 || !s.done) {
              fail("request " + std::to_string(k) + ": status " + std::to_string(s.status) + " " + s.error.dump());
              continue;
            }
            tokens.assign(s.token_ids.begin(), s.token_ids.end());
            text = s.text;
          } else {
            const auto [status, answer] = complete(client, body);
            if (status != 200) {
              fail("request " + std::to_string(k) + ": status " + std::to_string(status) + " " + answer.dump());
              continue;
            }
            tokens = answer["choices"][0]["token_ids"].get<std::vector<TokenId>>();
            text = answer["choices"][0]["text"];
          }
          if (tokens != want.output_tokens || text != want.text) {
            fail("request " + std::to_string(k) + ": got \"" + text + "\", expected \"" + want.text + "\"");
            continue;
          }
          std::lock_guard lock(mutex);
          ++completed;
          completion_tokens += tokens.size();
        } catch (const std::exception& e) {
          fail("request " + std::to_string(k) + ": " + e.what());
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(completed + hung_up, kClients * kRequests);
  EXPECT_EQ(hung_up, kClients * kRequests / 10);

  bench::HttpClient watcher(address());
  const std::string metrics = wait_until_idle(watcher);  // includes: 0 blocks in use
  EXPECT_EQ(server_->metrics().snapshot().blocks_used, 0u);
  const double finished = metric(metrics, sample("prunekv:request_success_total", "finished_reason=\"stop\"")) +
                          metric(metrics, sample("prunekv:request_success_total", "finished_reason=\"length\""));
  EXPECT_EQ(finished, completed);
  EXPECT_EQ(metric(metrics, sample("prunekv:request_success_total", "finished_reason=\"abort\"")), hung_up);
  EXPECT_EQ(metric(metrics, sample("prunekv:prompt_tokens_total")), double(kClients * kRequests * kPromptTokens));
  // Completed requests' tokens plus what the hung-up ones made before they were cancelled.
  const double generated = metric(metrics, sample("prunekv:generation_tokens_total"));
  EXPECT_GE(generated, double(completion_tokens + 2 * hung_up));
  EXPECT_LT(generated, double(completion_tokens + hung_up * kHangUpMaxTokens));
  EXPECT_EQ(metric(metrics, sample("prunekv:e2e_request_latency_seconds_count")), kClients * kRequests);
}

}  // namespace
}  // namespace prunekv::testing
