// ShardRun without a model: which lines a run owns, flags that cannot work together, and what
// --resume keeps, cuts or refuses in an existing output file.
#include "scheduler/shard_run.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "scheduler/record_file.h"

namespace prunekv {
namespace {
namespace fs = std::filesystem;

class ShardRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("prunekv_shard_run_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    input_path_ = (dir_ / "in.jsonl").string();
    std::string text;
    for (int i = 0; i < 7; ++i) text += fmt::format("{{\"id\": \"q{}\", \"prompt\": \"x\"}}\n", i);
    std::ofstream(input_path_) << text;
    std::ifstream in(input_path_);
    input_ = read_batch_text(in, RequestDefaults{});
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  ShardRun make(const std::string& output, std::optional<ShardAssignment> shard, bool resume = false) {
    return ShardRun({input_path_, output, std::move(shard), resume}, input_);
  }

  fs::path dir_;
  std::string input_path_;
  BatchInput input_;
};

TEST_F(ShardRunTest, OwnsTheLinesOfItsShard) {
  const ShardRun run = make(path("o-{shard}.jsonl"), ShardAssignment{3, 1, "test"});
  EXPECT_EQ(run.output_path(), path("o-1.jsonl"));
  EXPECT_EQ(run.pending(), (std::vector<size_t>{1, 4}));
  EXPECT_FALSE(run.appends());
  const ShardRun all = make(path("all.jsonl"), std::nullopt);
  EXPECT_EQ(all.pending().size(), 7u);
}

TEST_F(ShardRunTest, RefusesFlagsThatCannotWorkTogether) {
  EXPECT_THROW(make(path("o-{shard}.jsonl"), std::nullopt), ConfigError);
  EXPECT_THROW(make(path("o.jsonl"), ShardAssignment{2, 0, "test"}), ConfigError);  // two shards, one file
  EXPECT_THROW(make("-", ShardAssignment{1, 0, "test"}), ConfigError);
  EXPECT_THROW(make("-", std::nullopt, /*resume=*/true), ConfigError);
  EXPECT_NO_THROW(make(path("o.jsonl"), ShardAssignment{1, 0, "test"}));
}

TEST_F(ShardRunTest, FinishWritesAManifestAndANewRunRemovesIt) {
  ShardRun run = make(path("o-{shard}.jsonl"), ShardAssignment{2, 0, "test"});
  std::ofstream(path("o-0.jsonl")) << "{\"id\": \"q0\"}\n{\"id\": \"q2\"}\n{\"id\": \"q4\"}\n{\"id\": \"q6\", \"error\": \"e\"}\n";
  for (bool ok : {true, true, true, false}) run.count_record(ok);
  run.finish();
  const ShardManifest m = read_manifest(manifest_path_for(path("o-0.jsonl")));
  EXPECT_EQ(m.input, fingerprint_file(input_path_));
  EXPECT_EQ(m.num_input_lines, 7u);
  EXPECT_EQ(m.num_shards, 2u);
  EXPECT_EQ(m.shard_index, 0u);
  EXPECT_EQ(m.shard_source, "test");
  EXPECT_EQ(m.served_line_indices, (std::vector<size_t>{0, 2, 4, 6}));
  EXPECT_EQ(m.num_ok, 3u);
  EXPECT_EQ(m.num_error, 1u);
  EXPECT_EQ(m.output_size_bytes, fs::file_size(path("o-0.jsonl")));
  // A rerun may change the output: the old manifest must not vouch for it.
  make(path("o-{shard}.jsonl"), ShardAssignment{2, 0, "test"});
  EXPECT_FALSE(fs::exists(manifest_path_for(path("o-0.jsonl"))));
}

TEST_F(ShardRunTest, ResumeKeepsCompleteRecordsAndCutsAPartialLine) {
  const std::string out = path("o-1.jsonl");
  std::ofstream(out, std::ios::binary) << "{\"id\": \"q1\"}\n{\"id\": \"q3\", \"error\": \"x\"}\n{\"id\": \"q5";
  const ShardRun run = make(path("o-{shard}.jsonl"), ShardAssignment{2, 1, "test"}, /*resume=*/true);
  EXPECT_TRUE(run.appends());
  EXPECT_EQ(run.num_resumed(), 2u);
  EXPECT_EQ(run.pending(), (std::vector<size_t>{5}));
  const RecordFile file = read_record_file(out);
  EXPECT_EQ(file.lines.size(), 2u);
  EXPECT_EQ(file.file_bytes, file.complete_bytes);  // the partial line is gone
}

TEST_F(ShardRunTest, ResumeRefusesTheOutputOfAnotherShard) {
  std::ofstream(path("o-1.jsonl")) << "{\"id\": \"q0\"}\n";  // shard 0's first line
  try {
    make(path("o-{shard}.jsonl"), ShardAssignment{2, 1, "test"}, /*resume=*/true);
    FAIL() << "resume accepted another shard's output";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("record 1 of " + path("o-1.jsonl") + " is for id \"q0\""),
              std::string::npos)
        << e.what();
  }
  // No output yet: everything is pending.
  EXPECT_EQ(make(path("p-{shard}.jsonl"), ShardAssignment{2, 1, "test"}, true).pending().size(), 3u);
}

}  // namespace
}  // namespace prunekv
