#include "bench/eval_report.h"

#include <gtest/gtest.h>

#include <cmath>

namespace prunekv::bench {
namespace {

RequestOutput output(std::string id, std::vector<TokenId> tokens, double kept = 1.0, double kept_blocks = 1.0,
                     size_t freed = 0) {
  RequestOutput out;
  out.id = std::move(id);
  out.output_tokens = std::move(tokens);
  out.kv_kept_fraction = kept;
  out.kv_kept_block_fraction = kept_blocks;
  out.blocks_freed_by_pruning = freed;
  return out;
}

// One request's result with the free-running fields set, the rest at their defaults.
EvalRequestResult result(std::string id, bool exact, double prefix, double kept, double kept_blocks, size_t freed,
                         size_t num_output_tokens) {
  EvalRequestResult r;
  r.id = std::move(id);
  r.exact = exact;
  r.prefix_fraction = prefix;
  r.kv_kept_fraction = kept;
  r.kv_kept_block_fraction = kept_blocks;
  r.blocks_freed = freed;
  r.num_output_tokens = num_output_tokens;
  return r;
}

TEST(EvalReport, ComparesWithTheFullCacheTokenByToken) {
  const RequestOutput full = output("a", {1, 2, 3, 4});
  {
    // Identical: exact, whole prefix.
    const auto r = compare_with_full(full, output("a", {1, 2, 3, 4}, 0.6, 0.7, 5));
    EXPECT_TRUE(r.exact);
    EXPECT_FALSE(r.first_divergence.has_value());
    EXPECT_DOUBLE_EQ(r.prefix_fraction, 1.0);
    EXPECT_DOUBLE_EQ(r.kv_kept_fraction, 0.6);
    EXPECT_DOUBLE_EQ(r.kv_kept_block_fraction, 0.7);
    EXPECT_EQ(r.blocks_freed, 5u);
    EXPECT_EQ(r.num_output_tokens, 4u);
  }
  {
    // Diverges at the third token: 2 of 4 full tokens agree.
    const auto r = compare_with_full(full, output("a", {1, 2, 9, 4, 5}));
    EXPECT_FALSE(r.exact);
    EXPECT_DOUBLE_EQ(r.prefix_fraction, 0.5);
    EXPECT_EQ(r.first_divergence, 2u);
    EXPECT_EQ(r.num_output_tokens, 5u);
  }
  {
    // Stops early with an agreeing prefix: not exact.
    const auto r = compare_with_full(full, output("a", {1, 2, 3}));
    EXPECT_FALSE(r.exact);
    EXPECT_DOUBLE_EQ(r.prefix_fraction, 0.75);
    EXPECT_EQ(r.first_divergence, 3u);  // the missing fourth token
  }
  {
    // Continues past the full output's end: the full output is all agreed, but not exact.
    const auto r = compare_with_full(full, output("a", {1, 2, 3, 4, 8}));
    EXPECT_FALSE(r.exact);
    EXPECT_DOUBLE_EQ(r.prefix_fraction, 1.0);
  }
  {
    // Both empty.
    const auto r = compare_with_full(output("b", {}), output("b", {}));
    EXPECT_TRUE(r.exact);
    EXPECT_DOUBLE_EQ(r.prefix_fraction, 1.0);
  }
}

// log p for each row of probabilities.
std::vector<std::vector<float>> logs(const std::vector<std::vector<double>>& probabilities) {
  std::vector<std::vector<float>> out;
  for (const auto& row : probabilities) {
    out.emplace_back();
    for (double p : row) out.back().push_back(static_cast<float>(std::log(p)));
  }
  return out;
}

TEST(TeacherForcedFidelity, KeepingEverythingGivesAgreementOneAndKlZero) {
  const auto full = logs({{0.7, 0.2, 0.1}, {0.1, 0.1, 0.8}, {0.3, 0.3, 0.4}});
  const std::vector<TokenId> tokens = {0, 2, 2};
  const TeacherForcedFidelity tf = teacher_forced_fidelity(full, tokens, full);
  EXPECT_EQ(tf.steps, 3u);
  EXPECT_EQ(tf.agreement, 1.0);
  EXPECT_EQ(tf.mean_kl, 0.0);
}

TEST(TeacherForcedFidelity, AShiftedDistributionGivesItsKnownKlAndArgmax) {
  // Step 0 unchanged; at step 1 the pruned cache moves mass from token 0 to token 1:
  // KL = 0.5 ln(0.5 / 0.25) + 0.5 ln(0.5 / 0.75) = 0.5 ln(4/3), and its argmax is 1, not 0.
  const auto full = logs({{0.9, 0.1}, {0.5, 0.5}});
  const auto pruned = logs({{0.9, 0.1}, {0.25, 0.75}});
  const std::vector<TokenId> tokens = {0, 0};  // a tie in the full run: the lower id is its token
  const TeacherForcedFidelity tf = teacher_forced_fidelity(full, tokens, pruned);
  EXPECT_EQ(tf.steps, 2u);
  EXPECT_DOUBLE_EQ(tf.agreement, 0.5);
  EXPECT_NEAR(tf.mean_kl, 0.5 * std::log(4.0 / 3.0) / 2.0, 1e-7);
  // A token of zero probability in the full run adds nothing; fewer rows bound the steps.
  const auto with_zero = logs({{1.0, 0.0}});
  const TeacherForcedFidelity one = teacher_forced_fidelity(with_zero, tokens, logs({{0.5, 0.5}}));
  EXPECT_EQ(one.steps, 1u);
  EXPECT_NEAR(one.mean_kl, std::log(2.0), 1e-7);
  // No step at all: nothing disagreed.
  const TeacherForcedFidelity none = teacher_forced_fidelity(full, {}, pruned);
  EXPECT_EQ(none.steps, 0u);
  EXPECT_EQ(none.agreement, 1.0);
  EXPECT_EQ(none.mean_kl, 0.0);
}

TEST(EvalReport, PoolsPromptBlocksFreedAndAveragesTeacherForcedFigures) {
  EvalPolicyResult p;
  p.requests.resize(2);
  p.requests[0].blocks_freed = 10;
  p.requests[0].num_prompt_blocks = 20;
  p.requests[0].tf.agreement = 1.0;
  p.requests[0].tf.mean_kl = 0.0;
  p.requests[1].blocks_freed = 5;
  p.requests[1].num_prompt_blocks = 80;
  p.requests[1].tf.agreement = 0.5;
  p.requests[1].tf.mean_kl = 0.2;
  EXPECT_DOUBLE_EQ(p.prompt_blocks_freed_fraction(), 15.0 / 100.0);  // pooled, not the mean 0.28125
  EXPECT_DOUBLE_EQ(p.mean_tf_agreement(), 0.75);
  EXPECT_DOUBLE_EQ(p.mean_tf_kl(), 0.1);
}

TEST(EvalReport, FrontierHasOneLinePerFamilyInRatioOrderAndOnePointPerOtherPolicy) {
  auto policy = [](std::string name, std::string family, double ratio, size_t freed, bool exact) {
    EvalPolicyResult p;
    p.policy = std::move(name);
    p.family = std::move(family);
    p.ratio = ratio;
    p.requests.resize(1);
    p.requests[0].exact = exact;
    p.requests[0].blocks_freed = freed;
    p.requests[0].num_prompt_blocks = 100;
    p.requests[0].tf.agreement = exact ? 1.0 : 0.9;
    return p;
  };
  const std::vector<PlotPanel> panels = frontier_plot_panels(
      {policy("topp", "", 0, 30, true), policy("snapkv:0.9", "snapkv", 0.9, 10, true),
       policy("snapkv:0.5", "snapkv", 0.5, 50, false)});
  ASSERT_EQ(panels.size(), 2u);
  ASSERT_EQ(panels[0].series.size(), 2u);
  EXPECT_EQ(panels[0].series[0].label, "snapkv");
  EXPECT_EQ(panels[0].series[0].x, (std::vector<double>{50.0, 10.0}));  // ratio 0.5 first
  EXPECT_EQ(panels[0].series[0].y, (std::vector<double>{0.0, 1.0}));
  EXPECT_EQ(panels[0].series[1].label, "topp");
  EXPECT_EQ(panels[0].series[1].x, (std::vector<double>{30.0}));
  EXPECT_TRUE(panels[0].series[1].markers);
  EXPECT_EQ(panels[1].series[0].y, (std::vector<double>{0.9, 1.0}));
}

TEST(EvalReport, SummarisesAPolicy) {
  EvalPolicyResult p;
  p.policy = "dbudget";
  p.requests = {result("a", true, 1.0, 0.5, 0.6, 3, 10),
                result("b", false, 0.5, 0.9, 1.0, 0, 10),
                result("c", true, 1.0, 0.7, 0.8, 2, 10),
                result("d", false, 0.0, 0.6, 0.6, 4, 10)};
  EXPECT_EQ(p.num_exact(), 2u);
  EXPECT_DOUBLE_EQ(p.exact_agreement(), 0.5);
  EXPECT_DOUBLE_EQ(p.mean_prefix_fraction(), 0.625);
  EXPECT_DOUBLE_EQ(p.mean_kv_kept_fraction(), 0.675);
  EXPECT_DOUBLE_EQ(p.mean_kv_kept_block_fraction(), 0.75);
  EXPECT_EQ(p.blocks_freed(), 9u);
  EXPECT_DOUBLE_EQ(p.kept_fraction_min(), 0.5);
  EXPECT_DOUBLE_EQ(p.kept_fraction_median(), 0.65);  // even count: mean of 0.6 and 0.7
  EXPECT_DOUBLE_EQ(p.kept_fraction_max(), 0.9);
  p.requests.pop_back();
  EXPECT_DOUBLE_EQ(p.kept_fraction_median(), 0.7);  // odd count: the middle one
}

TEST(EvalReport, JsonHasExactlyTheIssueShape) {
  EvalPolicyResult p;
  p.policy = "full";
  p.requests = {result("a", true, 1.0, 1.0, 1.0, 0, 4)};
  const auto json = eval_json({p});
  ASSERT_EQ(json.size(), 1u);
  ASSERT_TRUE(json.contains("policies"));
  const auto& policy = json["policies"].at(0);
  std::vector<std::string> keys;
  for (const auto& [key, value] : policy.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "policy", "family", "ratio", "num_requests", "num_exact", "exact_agreement",
                      "mean_prefix_fraction", "mean_tf_agreement", "mean_tf_kl", "mean_kv_kept_fraction",
                      "mean_kv_kept_block_fraction", "blocks_freed", "prompt_blocks_freed_fraction",
                      "kept_fraction_min", "kept_fraction_median", "kept_fraction_max", "prune_every",
                      "generated_blocks_freed", "requests"}));
  std::vector<std::string> request_keys;
  for (const auto& [key, value] : policy["requests"].at(0).items()) request_keys.push_back(key);
  EXPECT_EQ(request_keys,
            (std::vector<std::string>{"id", "exact", "prefix_fraction", "first_divergence", "tf_steps",
                                      "tf_agreement", "tf_mean_kl", "kv_kept_fraction", "kv_kept_block_fraction",
                                      "blocks_freed", "num_prompt_blocks", "num_output_tokens",
                                      "generated_blocks_freed", "kv_blocks_held"}));
  EXPECT_EQ(policy["num_requests"], 1);
  EXPECT_EQ(policy["exact_agreement"], 1.0);
  EXPECT_TRUE(policy["family"].is_null());
  EXPECT_TRUE(policy["requests"].at(0)["first_divergence"].is_null());

  p.family = "snapkv";
  p.ratio = 0.7;
  p.requests[0].first_divergence = 3;
  const auto swept = eval_json({p})["policies"].at(0);
  EXPECT_EQ(swept["family"], "snapkv");
  EXPECT_EQ(swept["ratio"], 0.7);
  EXPECT_EQ(swept["requests"].at(0)["first_divergence"], 3);
}

TEST(EvalReport, BlocksHeldAreAveragedOverTheRequestsStillGeneratingAtEachToken) {
  EvalPolicyResult p;
  p.policy = "topp every 16";
  p.requests = {result("a", true, 1.0, 1.0, 1.0, 0, 3), result("b", true, 1.0, 1.0, 1.0, 0, 1)};
  p.requests[0].kv_blocks_held = {10, 12, 8};
  p.requests[1].kv_blocks_held = {20};
  p.requests[0].generated_blocks_freed = 5;
  p.requests[1].generated_blocks_freed = 2;
  EXPECT_EQ(p.mean_kv_blocks_held(), (std::vector<double>{15.0, 12.0, 8.0}));
  EXPECT_EQ(p.generated_blocks_freed(), 7u);
  const auto panels = blocks_held_plot_panels({p});
  ASSERT_EQ(panels.size(), 1u);
  ASSERT_EQ(panels[0].series.size(), 1u);
  EXPECT_EQ(panels[0].series[0].label, "topp every 16");
  EXPECT_EQ(panels[0].series[0].x, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(panels[0].series[0].y, (std::vector<double>{15.0, 12.0, 8.0}));
}

TEST(EvalReport, TableHasOneRowPerPolicy) {
  EvalPolicyResult a, b;
  a.policy = "full";
  b.policy = "snapkv:0.7";
  b.requests = {result("x", false, 0.25, 0.7, 0.75, 6, 8)};
  const std::string table = eval_table({a, b});
  EXPECT_NE(table.find("| policy | exact |"), std::string::npos);
  EXPECT_NE(table.find("| full | 0/0 |"), std::string::npos);
  EXPECT_NE(table.find("| snapkv:0.7 | 0/1 | 0.000 | 1.0000 | 0.00e+00 | 0.250 | 0.700 | 0.750 | 0.0% | 6 |"),
            std::string::npos)
      << table;
}

}  // namespace
}  // namespace prunekv::bench
