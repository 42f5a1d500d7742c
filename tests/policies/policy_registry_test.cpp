// make_pruning_policy: good specs give the right policy and canonical name; bad ones throw
// ConfigError naming the problem.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "policies/pruning_policy.h"

namespace prunekv {
namespace {

TEST(MakePruningPolicy, ParsesEveryPolicyWithItsCanonicalName) {
  const std::pair<const char*, const char*> cases[] = {
      {"full", "full"},
      {"dbudget", "dbudget"},
      {"dbudget:T=0.01", "dbudget"},
      {"dbudget:exact", "dbudget:exact"},
      {"dbudget:T=0.005", "dbudget:T=0.005"},
      {"dbudget:T=0.005:exact", "dbudget:T=0.005:exact"},
      {"dbudget:exact:T=0.005", "dbudget:T=0.005:exact"},
      {"dbudget:T=0", "dbudget:T=0"},
      {"streaming:0.7", "streaming:0.7"},
      {"h2o:0.9", "h2o:0.9"},
      {"snapkv:0.5", "snapkv:0.5"},
      {"snapkv:1", "snapkv:1"},
      {"pyramidkv:0.25", "pyramidkv:0.25"},
      {"knorm:0.6", "knorm:0.6"},
      {"topp", "topp"},
      {"topp:eps=0.001", "topp"},
      {"topp:eps=0.002", "topp:eps=0.002"},
      {"topp-blk", "topp-blk"},
      {"topp-blk:eps=0.003", "topp-blk"},
      {"topp-blk:eps=0", "topp-blk:eps=0"},
      {"dbudget-l1", "dbudget-l1"},
      {"dbudget-l1:eps=0.01", "dbudget-l1"},
      {"dbudget-l1:eps=0.02", "dbudget-l1:eps=0.02"},
  };
  for (const auto& [spec, name] : cases) {
    const auto policy = make_pruning_policy(spec);
    EXPECT_EQ(policy->name(), name) << spec;
    // The canonical name parses back to itself.
    EXPECT_EQ(make_pruning_policy(policy->name())->name(), name);
  }
}

TEST(MakePruningPolicy, ReportsWhatEachPolicyNeeds) {
  EXPECT_FALSE(make_pruning_policy("full")->prunes());
  EXPECT_TRUE(make_pruning_policy("dbudget")->needs_stats());
  EXPECT_TRUE(make_pruning_policy("h2o:0.5")->needs_stats());
  EXPECT_TRUE(make_pruning_policy("snapkv:0.5")->needs_stats());
  EXPECT_TRUE(make_pruning_policy("pyramidkv:0.5")->needs_stats());
  EXPECT_FALSE(make_pruning_policy("streaming:0.5")->needs_stats());
  EXPECT_FALSE(make_pruning_policy("knorm:0.5")->needs_stats());
  EXPECT_TRUE(make_pruning_policy("knorm:0.5")->needs_key_data());
  EXPECT_FALSE(make_pruning_policy("dbudget")->needs_key_data());
}

// Each policy asks for exactly the statistics its select() reads, so the forward step records
// only those (dbudget: one query row instead of every prompt row).
TEST(MakePruningPolicy, DeclaresTheStatisticsItReads) {
  EXPECT_EQ(make_pruning_policy("full")->needed_stats(), 0u);
  EXPECT_EQ(make_pruning_policy("streaming:0.5")->needed_stats(), 0u);
  EXPECT_EQ(make_pruning_policy("knorm:0.5")->needed_stats(), 0u);
  EXPECT_EQ(make_pruning_policy("dbudget")->needed_stats(), stat_bit(SlotStat::kLastRow));
  EXPECT_EQ(make_pruning_policy("dbudget:exact")->needed_stats(), stat_bit(SlotStat::kLastRow));
  EXPECT_EQ(make_pruning_policy("h2o:0.5")->needed_stats(), stat_bit(SlotStat::kAccumulated));
  EXPECT_EQ(make_pruning_policy("snapkv:0.5")->needed_stats(), stat_bit(SlotStat::kWindowSum));
  EXPECT_EQ(make_pruning_policy("pyramidkv:0.5")->needed_stats(), stat_bit(SlotStat::kWindowSum));
  for (const char* spec : {"topp", "topp-blk", "dbudget-l1"}) {
    const auto policy = make_pruning_policy(spec);
    EXPECT_EQ(policy->needed_stats(), stat_bit(SlotStat::kWindowSum)) << spec;
    EXPECT_EQ(policy->stats_request(100).window, 32) << spec;  // W = min(32, N) observing queries
    EXPECT_FALSE(policy->needs_key_data()) << spec;
  }

  const StatsRequest request = make_pruning_policy("snapkv:0.5")->stats_request(100);
  EXPECT_EQ(request.prompt_len, 100);
  EXPECT_EQ(request.window, kObservationWindow);
  EXPECT_TRUE(request.wants(SlotStat::kWindowSum));
  EXPECT_FALSE(request.wants(SlotStat::kLastRow));
  EXPECT_FALSE(request.wants(SlotStat::kAccumulated));
  // A request built without a mask records everything, as before masks existed.
  EXPECT_EQ(StatsRequest{}.stats, kAllSlotStats);
}

TEST(MakePruningPolicy, RejectsBadSpecsWithConfigError) {
  for (const char* spec : {"", "dbudgets", "FULL", "full:1", "snapkv", "snapkv:", "snapkv:0", "snapkv:-0.5",
                           "snapkv:1.5", "snapkv:abc", "snapkv:0.5x", "snapkv:0.5:exact", "snapkv:nan",
                           "snapkv:inf", "h2o:0.5:0.5", "dbudget:T=1", "dbudget:T=-0.1", "dbudget:T=",
                           "dbudget:T=abc", "dbudget:foo", "dbudget:exact:exact", "dbudget:T=0.1:T=0.2",
                           "dbudget:0.5", "dbudget:", "streaming:R=0.5", "topp:0.001", "topp:eps=",
                           "topp:eps=1", "topp:eps=-0.1", "topp:eps=0.1:eps=0.2", "topp-blk:exact",
                           "dbudget-l1:T=0.01", "dbudget-l1:eps=abc", "topp-block", "dbudget-l2"}) {
    EXPECT_THROW(make_pruning_policy(spec), ConfigError) << "spec '" << spec << "'";
  }
}

TEST(MakePruningPolicy, ErrorMessagesSayWhatWasExpected) {
  try {
    make_pruning_policy("snapkv:2");
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("(0, 1]"), std::string::npos) << e.what();
  }
  try {
    make_pruning_policy("lru:0.5");
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("dbudget"), std::string::npos) << e.what();
  }
}

TEST(PruningPolicyHelp, ListsEveryPolicy) {
  const std::string help = pruning_policy_help();
  for (const char* name : {"full", "dbudget", "streaming", "h2o", "snapkv", "pyramidkv", "knorm", "T=0.01", "topp ",
                           "topp-blk", "dbudget-l1", "eps=0.001", "eps=0.003", "eps=0.01"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace prunekv
