// Teacher forcing through the engine (RequestSpec::forced_tokens + record_logprobs) and eval's
// teacher-forced figures on it: a cache that keeps everything agrees with itself exactly (TF
// agreement 1, KL 0), and a known eviction gives the KL a scalar reference forward computes
// with exactly those positions hidden.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "bench/eval_report.h"
#include "model/ops.h"
#include "scheduler/engine.h"
#include "scheduler/transformer_runner.h"
#include "tests/testing/random_model.h"
#include "tests/testing/reference_forward.h"

namespace prunekv::bench {
namespace {

constexpr size_t kPromptLen = 40;
constexpr size_t kSteps = 6;

std::vector<TokenId> random_tokens(size_t n, uint32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<TokenId> pick(3, TokenId(vocab) - 1);  // no BOS / EOS
  std::vector<TokenId> out(n);
  for (TokenId& t : out) t = pick(rng);
  return out;
}

RequestOutput run_one(const Model& model, const std::string& policy, std::vector<TokenId> forced) {
  TransformerRunner runner(model, 1);
  EngineConfig config;
  config.num_kv_blocks = 256;
  config.default_policy = policy;
  RequestSpec spec;
  spec.prompt_tokens = random_tokens(kPromptLen, model.config.vocab_size, 7);
  spec.max_tokens = kSteps;
  spec.ignore_eos = true;
  spec.forced_tokens = std::move(forced);
  spec.record_logprobs = true;
  std::vector<RequestOutput> outputs = generate(runner, config, {spec});
  EXPECT_TRUE(outputs.at(0).finished()) << outputs[0].error;
  return std::move(outputs[0]);
}

std::vector<float> log_softmax_of(const std::vector<float>& logits) {
  std::vector<float> out(logits.size());
  log_softmax(logits.data(), out.data(), logits.size());
  return out;
}

TEST(TeacherForcing, TheFullCacheFedItsOwnOutputAgreesExactlyWithKlZero) {
  const auto model = testing::make_random_model({}, 3);
  const RequestOutput free_running = run_one(*model, "full", {});
  ASSERT_EQ(free_running.output_tokens.size(), kSteps);
  ASSERT_EQ(free_running.logprobs.size(), kSteps);
  const RequestOutput forced = run_one(*model, "full", free_running.output_tokens);
  EXPECT_EQ(forced.output_tokens, free_running.output_tokens);
  const TeacherForcedFidelity tf =
      teacher_forced_fidelity(free_running.logprobs, free_running.output_tokens, forced.logprobs);
  EXPECT_EQ(tf.steps, kSteps);
  EXPECT_EQ(tf.agreement, 1.0);
  EXPECT_EQ(tf.mean_kl, 0.0);
}

TEST(TeacherForcing, FeedsTheGivenTokensAndRecordsTheLogprobsOfAKnownEviction) {
  const auto model = testing::make_random_model({}, 5);
  // Tokens the model would not pick itself: forcing must override the sampler.
  const std::vector<TokenId> forced_tokens = random_tokens(kSteps, model->config.vocab_size, 11);
  const RequestOutput full = run_one(*model, "full", forced_tokens);
  // streaming:0.5 keeps positions 0..3 and 24..39 of the 40-token prompt in every list.
  const RequestOutput pruned = run_one(*model, "streaming:0.5", forced_tokens);
  EXPECT_EQ(pruned.output_tokens, forced_tokens);
  ASSERT_EQ(full.logprobs.size(), kSteps);
  ASSERT_EQ(pruned.logprobs.size(), kSteps);

  // The reference: step 0 comes from the prefill (pruning follows it), steps 1.. from feeding
  // the forced tokens with positions 4..23 hidden.
  testing::ReferenceForward full_ref(*model), pruned_ref(*model);
  const std::vector<TokenId> prompt = random_tokens(kPromptLen, model->config.vocab_size, 7);
  std::vector<std::vector<float>> full_expected{log_softmax_of(full_ref.prefill(prompt))};
  std::vector<std::vector<float>> pruned_expected{log_softmax_of(pruned_ref.prefill(prompt))};
  pruned_ref.set_keep([](uint32_t, uint32_t, Pos pos) { return pos < 4 || pos >= 24; });
  for (size_t i = 0; i + 1 < kSteps; ++i) {
    full_expected.push_back(log_softmax_of(full_ref.step(forced_tokens[i])));
    pruned_expected.push_back(log_softmax_of(pruned_ref.step(forced_tokens[i])));
  }
  for (size_t i = 0; i < kSteps; ++i) {
    for (size_t v = 0; v < model->config.vocab_size; ++v) {
      ASSERT_NEAR(full.logprobs[i][v], full_expected[i][v], 1e-3) << "step " << i << " token " << v;
      ASSERT_NEAR(pruned.logprobs[i][v], pruned_expected[i][v], 1e-3) << "step " << i << " token " << v;
    }
  }

  const TeacherForcedFidelity tf = teacher_forced_fidelity(full.logprobs, forced_tokens, pruned.logprobs);
  const TeacherForcedFidelity expected = teacher_forced_fidelity(full_expected, forced_tokens, pruned_expected);
  EXPECT_EQ(tf.steps, kSteps);
  EXPECT_GT(expected.mean_kl, 1e-4);  // the eviction changes the distributions measurably
  EXPECT_NEAR(tf.mean_kl, expected.mean_kl, 1e-3 * expected.mean_kl + 1e-6);
  EXPECT_EQ(tf.agreement, expected.agreement);
  // Step 0 is the prefill's, before any pruning: identical in both runs.
  EXPECT_EQ(full.logprobs[0], pruned.logprobs[0]);
}

TEST(TeacherForcing, RejectsMoreForcedTokensThanMaxTokensAndTokensOutsideTheVocabulary) {
  const auto model = testing::make_random_model({}, 3);
  TransformerRunner runner(*model, 1);
  EngineConfig config;
  config.num_kv_blocks = 256;
  RequestSpec too_many;
  too_many.prompt_tokens = {1, 5, 6};
  too_many.max_tokens = 2;
  too_many.forced_tokens = {7, 8, 9};
  RequestSpec out_of_range = too_many;
  out_of_range.forced_tokens = {7, TokenId(model->config.vocab_size)};
  const auto outputs = generate(runner, config, {too_many, out_of_range});
  EXPECT_EQ(outputs[0].finish_reason, FinishReason::kError);
  EXPECT_NE(outputs[0].error.find("more than max_tokens"), std::string::npos) << outputs[0].error;
  EXPECT_EQ(outputs[1].finish_reason, FinishReason::kError);
  EXPECT_NE(outputs[1].error.find("out of range"), std::string::npos) << outputs[1].error;
}

}  // namespace
}  // namespace prunekv::bench
