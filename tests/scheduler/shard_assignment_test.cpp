#include "scheduler/shard_assignment.h"

#include <gtest/gtest.h>

#include <map>

#include "common/error.h"

namespace prunekv {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(std::optional<uint32_t> n, std::optional<uint32_t> i, std::map<std::string, std::string> vars) {
  try {
    select_shard(n, i, env_of(std::move(vars)));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ShardAssignment, EveryLineBelongsToExactlyOneShard) {
  for (uint32_t n : {1u, 2u, 3u, 7u})
    for (size_t line = 0; line < 50; ++line) {
      int owners = 0;
      for (uint32_t i = 0; i < n; ++i) owners += ShardAssignment{n, i, ""}.serves(line) ? 1 : 0;
      EXPECT_EQ(owners, 1) << "line " << line << " of " << n << " shards";
      EXPECT_TRUE((ShardAssignment{n, static_cast<uint32_t>(line % n), ""}.serves(line)));
    }
}

TEST(ShardAssignment, FlagsWinOverTheEnvironment) {
  const auto shard = select_shard(3, 2, env_of({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}}));
  ASSERT_TRUE(shard);
  EXPECT_EQ(shard->num_shards, 3u);
  EXPECT_EQ(shard->shard_index, 2u);
  EXPECT_EQ(shard->source, "--num-shards/--shard-index");
}

TEST(ShardAssignment, NoFlagsAndNoLauncherIsAnUnshardedRun) {
  EXPECT_FALSE(select_shard(std::nullopt, std::nullopt, env_of({})));
}

TEST(ShardAssignment, ReadsEachLaunchersVariables) {
  struct Case {
    std::map<std::string, std::string> vars;
    std::optional<uint32_t> num_shards_flag;
    uint32_t num_shards, shard_index;
    std::string source;
  };
  const std::vector<Case> cases = {
      {{{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"}}, {}, 4, 1,
       "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE"},
      {{{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "3"}}, {}, 3, 2,
       "SLURM_ARRAY_TASK_ID-SLURM_ARRAY_TASK_MIN/SLURM_ARRAY_TASK_COUNT"},
      // --array=1-4: tasks 1..4 are shards 0..3.
      {{{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}}, {}, 4, 3,
       "SLURM_ARRAY_TASK_ID-SLURM_ARRAY_TASK_MIN/SLURM_ARRAY_TASK_COUNT"},
      {{{"JOB_COMPLETION_INDEX", "5"}}, 8, 8, 5, "JOB_COMPLETION_INDEX/--num-shards"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}}, {}, 2, 0, "RANK/WORLD_SIZE"},
      // mpirun comes first when torchrun-style variables are also set.
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, {}, 2, 1,
       "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE"},
      // --num-shards may restate the launcher's size.
      {{{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, 2, 2, 1,
       "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    const auto shard = select_shard(c.num_shards_flag, std::nullopt, env_of(c.vars));
    ASSERT_TRUE(shard);
    EXPECT_EQ(shard->num_shards, c.num_shards);
    EXPECT_EQ(shard->shard_index, c.shard_index);
    EXPECT_EQ(shard->source, c.source);
  }
}

TEST(ShardAssignment, RefusesWhatCannotNameOneShard) {
  EXPECT_NE(error_of(std::nullopt, 1, {}).find("--shard-index needs --num-shards"), std::string::npos);
  EXPECT_NE(error_of(2, 2, {}).find("shard index 2 is out of range for 2 shards"), std::string::npos);
  EXPECT_NE(error_of(2, std::nullopt, {}).find("--num-shards 2 without --shard-index"), std::string::npos);
  EXPECT_NE(error_of(std::nullopt, std::nullopt, {{"JOB_COMPLETION_INDEX", "0"}}).find("--num-shards"),
            std::string::npos);
  EXPECT_NE(error_of(std::nullopt, std::nullopt, {{"OMPI_COMM_WORLD_RANK", "0"}}).find("OMPI_COMM_WORLD_SIZE"),
            std::string::npos);
  EXPECT_NE(error_of(std::nullopt, std::nullopt, {{"RANK", "x1"}, {"WORLD_SIZE", "2"}}).find("RANK=\"x1\""),
            std::string::npos);
  EXPECT_NE(error_of(std::nullopt, std::nullopt, {{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("out of range"),
            std::string::npos);
  EXPECT_NE(error_of(3, std::nullopt, {{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}})
                .find("--num-shards 3 disagrees with the launcher's 2 shards"),
            std::string::npos);
  EXPECT_NE(error_of(std::nullopt, std::nullopt,
                     {{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_COUNT", "2"}, {"SLURM_ARRAY_TASK_MIN", "1"}})
                .find("below SLURM_ARRAY_TASK_MIN"),
            std::string::npos);
  EXPECT_NE(error_of(0, 0, {}).find("at least 1 shard"), std::string::npos);
}

TEST(ShardAssignment, ShardPathReplacesEveryPlaceholder) {
  EXPECT_EQ(shard_path("out-{shard}.jsonl", 3), "out-3.jsonl");
  EXPECT_EQ(shard_path("d{shard}/o-{shard}", 12), "d12/o-12");
  EXPECT_EQ(shard_path("plain.jsonl", 1), "plain.jsonl");
}

}  // namespace
}  // namespace prunekv
