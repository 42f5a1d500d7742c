#include "cli/engine_options.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace prunekv::cli {
namespace {

std::string config_error(const EngineOptions& options) {
  try {
    options.engine_config();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(EngineOptions, ParsesKvMemorySizes) {
  EXPECT_EQ(parse_kv_memory("2MiB"), 2ull << 20);
  EXPECT_EQ(parse_kv_memory("1.5GiB"), 3ull << 29);
  EXPECT_EQ(parse_kv_memory("4096"), 4096u);
}

TEST(EngineOptions, BadKvMemoryNamesTheFlagAndTheValue) {
  for (const std::string bad : {"lots", "12XB", "-1MiB", ""}) {
    try {
      parse_kv_memory(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--kv-memory"), std::string::npos) << e.what();
    }
  }
  try {
    parse_kv_memory("0MiB");
    ADD_FAILURE() << "accepted 0MiB";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("above zero"), std::string::npos) << e.what();
  }
}

TEST(EngineOptions, BuildsTheEngineConfig) {
  EngineOptions options;
  options.kv_memory = "2MiB";
  options.block_size = 32;
  options.max_num_seqs = 7;
  options.max_num_batched_tokens = 99;
  options.threads = 3;
  options.policy = "dbudget,snapkv:0.5";
  options.admission = "naive";
  const EngineConfig config = options.engine_config();
  EXPECT_EQ(config.kv_memory_bytes, 2ull << 20);
  EXPECT_EQ(config.num_kv_blocks, 0u);
  EXPECT_EQ(config.block_size, 32u);
  EXPECT_EQ(config.max_num_seqs, 7u);
  EXPECT_EQ(config.max_num_batched_tokens, 99u);
  EXPECT_EQ(config.num_threads, 3);
  EXPECT_EQ(config.default_policy, "dbudget");
  EXPECT_EQ(config.admission, AdmissionMode::kNaive);
}

TEST(EngineOptions, DefaultsToTheDefaultPoolSizeWhenNoneIsGiven) {
  EngineOptions options;
  EXPECT_EQ(options.engine_config().kv_memory_bytes, parse_kv_memory(kDefaultKvMemory));
  options.kv_blocks = 100;
  EXPECT_EQ(options.engine_config().num_kv_blocks, 100u);
  EXPECT_EQ(options.engine_config().kv_memory_bytes, 0u);
}

TEST(EngineOptions, RejectsBadCombinationsAndValues) {
  EngineOptions both;
  both.kv_blocks = 10;
  both.kv_memory = "1MiB";
  EXPECT_NE(config_error(both).find("found both"), std::string::npos);

  EngineOptions admission;
  admission.admission = "greedy";
  EXPECT_NE(config_error(admission).find("admission"), std::string::npos);

  EngineOptions policy;
  policy.policy = "full,nonsense";
  EXPECT_NE(config_error(policy), "no error");

  EngineOptions empty_item;
  empty_item.policy = "full,,dbudget";
  EXPECT_NE(config_error(empty_item).find("--policy"), std::string::npos);
}

TEST(EngineOptions, SplitsPolicyListsAtCommas) {
  EngineOptions options;
  options.policy = "full,dbudget:T=0.005,snapkv:0.7";
  EXPECT_EQ(options.policy_list(), (std::vector<std::string>{"full", "dbudget:T=0.005", "snapkv:0.7"}));
}

}  // namespace
}  // namespace prunekv::cli
