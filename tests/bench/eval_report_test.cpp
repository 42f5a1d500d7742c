#include "bench/eval_report.h"

#include <gtest/gtest.h>

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

TEST(EvalReport, ComparesWithTheFullCacheTokenByToken) {
  const RequestOutput full = output("a", {1, 2, 3, 4});
  {
    // Identical: exact, whole prefix.
    const auto r = compare_with_full(full, output("a", {1, 2, 3, 4}, 0.6, 0.7, 5));
    EXPECT_TRUE(r.exact);
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
    EXPECT_EQ(r.num_output_tokens, 5u);
  }
  {
    // Stops early with an agreeing prefix: not exact.
    const auto r = compare_with_full(full, output("a", {1, 2, 3}));
    EXPECT_FALSE(r.exact);
    EXPECT_DOUBLE_EQ(r.prefix_fraction, 0.75);
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

TEST(EvalReport, SummarisesAPolicy) {
  EvalPolicyResult p;
  p.policy = "dbudget";
  p.requests = {{"a", true, 1.0, 0.5, 0.6, 3, 10},
                {"b", false, 0.5, 0.9, 1.0, 0, 10},
                {"c", true, 1.0, 0.7, 0.8, 2, 10},
                {"d", false, 0.0, 0.6, 0.6, 4, 10}};
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
  p.requests = {{"a", true, 1.0, 1.0, 1.0, 0, 4}};
  const auto json = eval_json({p});
  ASSERT_EQ(json.size(), 1u);
  ASSERT_TRUE(json.contains("policies"));
  const auto& policy = json["policies"].at(0);
  std::vector<std::string> keys;
  for (const auto& [key, value] : policy.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "policy", "num_requests", "num_exact", "exact_agreement", "mean_prefix_fraction",
                      "mean_kv_kept_fraction", "mean_kv_kept_block_fraction", "blocks_freed",
                      "kept_fraction_min", "kept_fraction_median", "kept_fraction_max", "requests"}));
  std::vector<std::string> request_keys;
  for (const auto& [key, value] : policy["requests"].at(0).items()) request_keys.push_back(key);
  EXPECT_EQ(request_keys,
            (std::vector<std::string>{"id", "exact", "prefix_fraction", "kv_kept_fraction",
                                      "kv_kept_block_fraction", "blocks_freed", "num_output_tokens"}));
  EXPECT_EQ(policy["num_requests"], 1);
  EXPECT_EQ(policy["exact_agreement"], 1.0);
}

TEST(EvalReport, TableHasOneRowPerPolicy) {
  EvalPolicyResult a, b;
  a.policy = "full";
  b.policy = "snapkv:0.7";
  b.requests = {{"x", false, 0.25, 0.7, 0.75, 6, 8}};
  const std::string table = eval_table({a, b});
  EXPECT_NE(table.find("| policy | exact |"), std::string::npos);
  EXPECT_NE(table.find("| full | 0/0 |"), std::string::npos);
  EXPECT_NE(table.find("| snapkv:0.7 | 0/1 | 0.000 | 0.250 | 0.700 | 0.750 | 6 |"), std::string::npos)
      << table;
}

}  // namespace
}  // namespace prunekv::bench
