// Sharded generate + merge on the real stories260K model: shards as separate processes (by
// flag, by launcher environment, under mpirun), a shard killed with SIGKILL and resumed, merge's
// refusals, and the OpenAI Batch format end to end. Merged results must equal the single-process
// run (and the golden file) token for token, in input order.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "cli/commands.h"
#include "common/error.h"
#include "scheduler/record_file.h"
#include "scheduler/shard_assignment.h"
#include "scheduler/shard_manifest.h"
#include "scheduler/shard_merge.h"
#include "tests/cli/child_process.h"
#include "tests/cli/cli_test_helpers.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_paths.h"

namespace prunekv::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class ShardedGenerate : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(model_path("stories260K.bin")) || !fs::exists(golden_path()))
      GTEST_SKIP() << "missing shared file " << model_path("stories260K.bin") << " or " << golden_path();
    golden_ = load_golden();
    ASSERT_EQ(golden_.size(), 60u);
    dir_ = cli_temp_path("dir");
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // `prunekv generate` on the model, one thread, the full cache (the golden outputs' own), for the
  // binary (with its name) or in-process.
  static std::vector<std::string> generate_args(const std::string& input, const std::string& output,
                                                const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--log-level", "info",     "generate", "--model", model_path("stories260K.bin"),
                                     "--tokenizer", model_path("tok512.bin"), "--input",  input,
                                     "--output",    output,     "-q",       "--threads", "1",
                                     "--policy",    "full"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  static std::vector<std::string> binary(std::vector<std::string> args) {
    args.insert(args.begin(), prunekv_binary());
    return args;
  }
  int merge_process(const std::string& input, const std::string& pattern, const std::string& output) {
    return run_process(binary({"merge", "--input", input, "--shards", pattern, "--output", output}),
                       path("merge.log"));
  }

  // Input lines' ids and output tokens must equal the golden ones, in order.
  void expect_golden_tokens(const std::string& results_path) {
    const auto records = read_jsonl_file(results_path);
    ASSERT_EQ(records.size(), golden_.size()) << results_path;
    for (size_t i = 0; i < golden_.size(); ++i) {
      SCOPED_TRACE(golden_[i].id);
      EXPECT_EQ(records[i]["id"], golden_[i].id);
      ASSERT_FALSE(records[i].contains("error")) << records[i]["error"];
      EXPECT_EQ(records[i]["output_tokens"].get<std::vector<TokenId>>(), golden_[i].output_tokens);
    }
  }

  std::vector<GoldenCase> golden_;
  std::string dir_;
};

// The ids and tokens of a results file, in order: what must not change when a run is sharded.
std::vector<std::pair<json, json>> ids_and_tokens(const std::string& results_path) {
  std::vector<std::pair<json, json>> out;
  for (const auto& record : read_jsonl_file(results_path)) out.emplace_back(record["id"], record["output_tokens"]);
  return out;
}

TEST_F(ShardedGenerate, TwoAndThreeShardProcessesMergeToTheGoldenTokens) {
  const std::string single = path("single.jsonl");
  ASSERT_EQ(run_prunekv(generate_args(golden_path(), single)), 0);
  for (uint32_t num_shards : {2u, 3u}) {
    SCOPED_TRACE(fmt::format("{} shards", num_shards));
    const std::string pattern = path(fmt::format("n{}-{{shard}}.jsonl", num_shards));
    std::vector<pid_t> pids;  // all at once, as a launcher starts them
    for (uint32_t i = 0; i < num_shards; ++i)
      pids.push_back(start_process(
          binary(generate_args(golden_path(), pattern,
                               {"--num-shards", std::to_string(num_shards), "--shard-index", std::to_string(i)})),
          path(fmt::format("n{}-{}.log", num_shards, i))));
    for (pid_t pid : pids) ASSERT_EQ(wait_process(pid), 0);
    for (uint32_t i = 0; i < num_shards; ++i) {
      const ShardManifest m = read_manifest(manifest_path_for(shard_path(pattern, i)));
      EXPECT_EQ(m.num_shards, num_shards);
      EXPECT_EQ(m.shard_index, i);
      EXPECT_EQ(m.served_line_indices.size(), (60 + num_shards - 1 - i) / num_shards);
      EXPECT_EQ(m.num_ok, m.served_line_indices.size());
      EXPECT_EQ(m.num_error, 0u);
    }
    const std::string merged = path(fmt::format("n{}-merged.jsonl", num_shards));
    ASSERT_EQ(merge_process(golden_path(), pattern, merged), 0) << read_text_file(path("merge.log"));
    expect_golden_tokens(merged);
    EXPECT_EQ(ids_and_tokens(merged), ids_and_tokens(single));
  }
}

TEST_F(ShardedGenerate, ShardsTakeTheirIndexFromTheLaunchersEnvironment) {
  // One shard as a Slurm array task (--array=1-2), the other as a Kubernetes Indexed Job pod:
  // the merge only succeeds if each read its own variables right.
  const std::string pattern = path("env-{shard}.jsonl");
  const pid_t slurm = start_process(binary(generate_args(golden_path(), pattern)), path("slurm.log"),
                                    {"SLURM_ARRAY_TASK_ID=1", "SLURM_ARRAY_TASK_MIN=1", "SLURM_ARRAY_TASK_COUNT=2"});
  const pid_t k8s = start_process(binary(generate_args(golden_path(), pattern, {"--num-shards", "2"})),
                                  path("k8s.log"), {"JOB_COMPLETION_INDEX=1"});
  ASSERT_EQ(wait_process(slurm), 0) << read_text_file(path("slurm.log"));
  ASSERT_EQ(wait_process(k8s), 0) << read_text_file(path("k8s.log"));
  EXPECT_NE(read_text_file(path("slurm.log")).find("shard 0 of 2 (from SLURM_ARRAY_TASK_ID"), std::string::npos)
      << read_text_file(path("slurm.log"));
  EXPECT_NE(read_text_file(path("k8s.log")).find("shard 1 of 2 (from JOB_COMPLETION_INDEX/--num-shards)"),
            std::string::npos)
      << read_text_file(path("k8s.log"));
  const std::string merged = path("env-merged.jsonl");
  ASSERT_EQ(merge_process(golden_path(), pattern, merged), 0) << read_text_file(path("merge.log"));
  expect_golden_tokens(merged);
}

TEST_F(ShardedGenerate, TwoRanksUnderMpirunMergeToTheGoldenTokens) {
  const auto mpirun = find_on_path("mpirun");
  if (!mpirun) GTEST_SKIP() << "mpirun is not on PATH (scripts/setup installs Debian's openmpi-bin)";
  const std::string pattern = path("mpi-{shard}.jsonl");
  std::vector<std::string> args = {*mpirun, "-np", "2", "--allow-run-as-root", "--oversubscribe", prunekv_binary()};
  for (const auto& a : generate_args(golden_path(), pattern)) args.push_back(a);
  ASSERT_EQ(run_process(args, path("mpirun.log")), 0) << read_text_file(path("mpirun.log"));
  for (uint32_t rank = 0; rank < 2; ++rank) {
    const ShardManifest m = read_manifest(manifest_path_for(shard_path(pattern, rank)));
    EXPECT_EQ(m.shard_source, "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE");
    EXPECT_EQ(m.num_shards, 2u);
  }
  const std::string merged = path("mpi-merged.jsonl");
  ASSERT_EQ(merge_process(golden_path(), pattern, merged), 0) << read_text_file(path("merge.log"));
  expect_golden_tokens(merged);
}

TEST_F(ShardedGenerate, AShardKilledMidRunResumesWithoutServingALineTwice) {
  // The golden prompts four times over (ids made unique), so a shard runs long enough to be
  // killed part-way: one request at a time, one thread.
  const std::string input = path("big.jsonl");
  std::string text;
  for (int copy = 0; copy < 4; ++copy)
    for (const auto& g : golden_)
      text += json{{"id", fmt::format("{}#{}", g.id, copy)}, {"prompt_tokens", g.prompt_tokens},
                   {"max_tokens", g.max_tokens}}
                  .dump() +
              "\n";
  write_text_file(input, text);
  const std::vector<std::string> slow = {"--max-num-seqs", "1", "--num-shards", "2", "--shard-index"};
  const std::string pattern = path("big-{shard}.jsonl"), shard1 = path("big-1.jsonl");

  std::vector<std::string> args0 = slow, args1 = slow;
  args0.push_back("0");
  args1.push_back("1");
  ASSERT_EQ(run_process(binary(generate_args(input, pattern, args0)), path("s0.log")), 0);
  const pid_t victim = start_process(binary(generate_args(input, pattern, args1)), path("s1.log"));
  // SIGKILL once a few records are out: no handler runs, whatever was mid-write stays cut.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline &&
         (!fs::exists(shard1) || read_record_file(shard1).lines.size() < 10))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_EQ(wait_process(victim), 128 + SIGKILL);
  const size_t num_before = read_record_file(shard1).lines.size();
  ASSERT_GE(num_before, 10u);
  ASSERT_LT(num_before, 120u) << "the shard finished before it could be killed";
  EXPECT_FALSE(fs::exists(manifest_path_for(shard1))) << "a killed shard must leave no manifest";
  // And a torn last write, as a kill during write() leaves one.
  std::ofstream(shard1, std::ios::app | std::ios::binary) << "{\"id\": \"s0";
  EXPECT_NE(merge_process(input, pattern, path("merged.jsonl")), 0);
  EXPECT_NE(read_text_file(path("merge.log")).find("shard 1 (" + shard1 + "): no manifest"), std::string::npos)
      << read_text_file(path("merge.log"));

  args1.push_back("--resume");
  ASSERT_EQ(run_process(binary(generate_args(input, pattern, args1)), path("s1-resume.log")), 0)
      << read_text_file(path("s1-resume.log"));
  const ShardManifest m = read_manifest(manifest_path_for(shard1));
  EXPECT_EQ(m.num_resumed, num_before);
  EXPECT_EQ(m.num_ok, 120u);
  // Count them: every line of shard 1 exactly once, in order.
  const auto records = read_jsonl_file(shard1);
  ASSERT_EQ(records.size(), 120u);
  for (size_t k = 0; k < records.size(); ++k)
    EXPECT_EQ(records[k]["id"], fmt::format("{}#{}", golden_[(2 * k + 1) % 60].id, (2 * k + 1) / 60));

  const std::string merged = path("merged.jsonl"), single = path("single.jsonl");
  ASSERT_EQ(merge_process(input, pattern, merged), 0) << read_text_file(path("merge.log"));
  ASSERT_EQ(run_prunekv(generate_args(input, single)), 0);
  EXPECT_EQ(ids_and_tokens(merged), ids_and_tokens(single));
}

// Nine golden lines in three shards, served in-process; each case breaks a copy of them.
class MergeRefuses : public ShardedGenerate {
 protected:
  void SetUp() override {
    ShardedGenerate::SetUp();
    if (IsSkipped()) return;
    input_ = path("nine.jsonl");
    std::string text;
    for (size_t i = 0; i < 9; ++i)
      text += json{{"id", golden_[i].id}, {"prompt_tokens", golden_[i].prompt_tokens}, {"max_tokens", 8}}.dump() +
              "\n";
    write_text_file(input_, text);
    for (int i = 0; i < 3; ++i)
      ASSERT_EQ(run_prunekv(generate_args(input_, path("o-{shard}.jsonl"),
                                          {"--num-shards", "3", "--shard-index", std::to_string(i)})),
                0);
  }
  std::string shard(int i) const { return path(fmt::format("o-{}.jsonl", i)); }
  // merge_shards' error, or "merged" when it accepted the shards.
  std::string merge_error(const std::string& input) {
    try {
      merge_shards(input, path("o-{shard}.jsonl"), path("merged.jsonl"));
    } catch (const InputError& e) {
      return e.what();
    }
    return "merged";
  }
  std::string input_;
};

TEST_F(MergeRefuses, NothingWhenEveryShardIsThere) {
  ASSERT_EQ(merge_error(input_), "merged");
  const auto records = read_jsonl_file(path("merged.jsonl"));
  ASSERT_EQ(records.size(), 9u);
  for (size_t i = 0; i < 9; ++i) EXPECT_EQ(records[i]["id"], golden_[i].id);
}

TEST_F(MergeRefuses, AMissingShard) {
  fs::remove(shard(2));
  fs::remove(manifest_path_for(shard(2)));
  EXPECT_EQ(merge_error(input_), "shard 2 of 3 is missing: no " + shard(2));
  // The command says so too, and exits non-zero.
  EXPECT_EQ(run_prunekv({"merge", "--input", input_, "--shards", path("o-{shard}.jsonl"), "--output",
                         path("merged.jsonl")}),
            1);
}

TEST_F(MergeRefuses, AShardThatDidNotFinish) {
  fs::remove(manifest_path_for(shard(1)));
  EXPECT_NE(merge_error(input_).find("shard 1 (" + shard(1) + "): no manifest"), std::string::npos);
}

TEST_F(MergeRefuses, AShardOfAnotherInput) {
  const std::string other = path("other.jsonl");
  write_text_file(other, read_text_file(input_) + "{\"prompt\": \"one more\"}\n");
  EXPECT_NE(merge_error(other).find("shard 0 (" + shard(0) + ") is from another input"), std::string::npos)
      << merge_error(other);
}

TEST_F(MergeRefuses, AnIndexServedTwice) {
  const std::string manifest = manifest_path_for(shard(1));
  json m = json::parse(read_text_file(manifest));
  m["served_line_indices"][0] = 0;  // shard 0's line
  write_text_file(manifest, m.dump());
  EXPECT_EQ(merge_error(input_), fmt::format("line index 0 (input line 1, id \"{}\") served twice: by shard 0 ({}) "
                                             "and shard 1 ({})",
                                             golden_[0].id, shard(0), shard(1)));
}

TEST_F(MergeRefuses, ATruncatedShardFile) {
  const RecordFile file = read_record_file(shard(0));
  std::string text;
  for (size_t k = 0; k + 1 < file.lines.size(); ++k) text += file.lines[k] + "\n";
  text += file.lines.back().substr(0, 10);  // the last record cut mid-line
  write_text_file(shard(0), text);
  EXPECT_NE(merge_error(input_).find("shard 0 (" + shard(0) + ") is truncated or changed: 2 complete records"),
            std::string::npos)
      << merge_error(input_);
}

TEST_F(ShardedGenerate, OpenAiBatchFilesShardAndMergeInTheirOwnFormat) {
  const std::string input = path("openai.jsonl");
  std::string text;
  for (size_t i = 0; i < 6; ++i) {
    text += json{{"custom_id", golden_[i].id},
                 {"method", "POST"},
                 {"url", "/v1/completions"},
                 {"body", {{"model", "stories260K"}, {"prompt", golden_[i].prompt}, {"max_tokens", golden_[i].max_tokens}}}}
                .dump() +
            "\n";
    if (i == 2)  // a line prunekv cannot serve keeps its place
      text += json{{"custom_id", "chat"}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", json::object()}}
                  .dump() +
              "\n";
  }
  write_text_file(input, text);
  const std::string pattern = path("oa-{shard}.jsonl"), merged = path("oa-merged.jsonl");
  // The chat line is index 3, so shard 1 exits 3 (some requests failed, their error records written).
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(run_prunekv(generate_args(input, pattern, {"--num-shards", "2", "--shard-index", std::to_string(i)})),
              i == 1 ? cli::kExitSomeRequestsFailed : 0);
  ASSERT_EQ(run_prunekv({"merge", "--input", input, "--shards", pattern, "--output", merged}), 0);
  const auto records = read_jsonl_file(merged);
  ASSERT_EQ(records.size(), 7u);
  for (size_t k = 0, i = 0; k < records.size(); ++k) {
    const json& record = records[k];
    if (k == 3) {
      EXPECT_EQ(record["custom_id"], "chat");
      EXPECT_EQ(record["response"]["status_code"], 400);
      EXPECT_NE(record["error"]["message"].get<std::string>().find("\"url\""), std::string::npos);
      continue;
    }
    SCOPED_TRACE(golden_[i].id);
    EXPECT_EQ(record["custom_id"], golden_[i].id);
    EXPECT_TRUE(record["error"].is_null());
    EXPECT_EQ(record["response"]["status_code"], 200);
    const json& body = record["response"]["body"];
    EXPECT_EQ(body["choices"][0]["text"], golden_[i].output_text);
    EXPECT_EQ(body["choices"][0]["finish_reason"], golden_[i].finish_reason);
    EXPECT_EQ(body["usage"]["completion_tokens"], golden_[i].output_tokens.size());
    ++i;
  }
}

}  // namespace
}  // namespace prunekv::testing
