#include "bench/batched_bench.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace prunekv::bench {
namespace {

TEST(BatchedBench, CasesFollowLlamaOrder) {
  const auto cases = batched_bench_cases({128, 512}, {32}, {1, 4});
  ASSERT_EQ(cases.size(), 4u);
  EXPECT_EQ(cases[1].pp, 128u);
  EXPECT_EQ(cases[1].batch, 4u);
  EXPECT_EQ(cases[2].pp, 512u);
  EXPECT_EQ(cases[2].batch, 1u);
}

TEST(BatchedBench, ResultArithmeticMatchesLlamaBatchedBench) {
  BatchedBenchResult r{{128, 32, 4}, 0.5, 2.0};
  EXPECT_EQ(r.n_kv(), 4u * 160u);
  EXPECT_DOUBLE_EQ(r.s_pp(), 4 * 128 / 0.5);
  EXPECT_DOUBLE_EQ(r.s_tg(), 4 * 32 / 2.0);
  EXPECT_DOUBLE_EQ(r.t(), 2.5);
  EXPECT_DOUBLE_EQ(r.s(), 640 / 2.5);
}

TEST(BatchedBench, MarkdownHasLlamaColumns) {
  const std::string header = batched_bench_md_header();
  for (const char* column :
       {"PP", "TG", "B", "N_KV", "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s", "T s", "S t/s"})
    EXPECT_NE(header.find(column), std::string::npos) << column;
  const std::string row = batched_bench_md_row(BatchedBenchResult{{128, 32, 4}, 0.5, 2.0});
  EXPECT_EQ(row,
            "|   128 |     32 |    4 |    640 |    0.500 |  1024.00 |    2.000 |    64.00 |    2.500 |   "
            "256.00 |\n");
}

TEST(BatchedBench, JsonlHasLlamaFieldNames) {
  BatchedBenchOptions options;
  options.num_threads = 2;
  const auto row =
      nlohmann::json::parse(batched_bench_jsonl_row(BatchedBenchResult{{128, 32, 4}, 0.5, 2.0}, options));
  for (const char* field : {"n_batch", "n_threads", "pp", "tg", "pl", "n_kv", "t_pp", "speed_pp", "t_tg",
                            "speed_tg", "t", "speed"})
    EXPECT_TRUE(row.contains(field)) << field;
  EXPECT_EQ(row["pl"], 4);
  EXPECT_EQ(row["n_kv"], 640);
  EXPECT_EQ(row["n_threads"], 2);
  EXPECT_EQ(row["kv_dtype"], "f32");
}

TEST(BatchedBench, RunsACaseAndSkipsOnesBeyondTheContext) {
  const auto model = load_model("synthetic:stories260K");
  BatchedBenchOptions options;
  options.n_batch = 40;  // the 2 x 24-token prompts span two prefill windows
  BatchedBench bench(*model, options);
  EXPECT_TRUE(bench.skip_reason({508, 8, 1}).has_value());
  EXPECT_FALSE(bench.skip_reason({504, 8, 1}).has_value());
  const BatchedBenchResult r = bench.run({24, 3, 2});
  EXPECT_EQ(r.n_kv(), 54u);
  EXPECT_GT(r.t_pp, 0.0);
  EXPECT_GT(r.t_tg, 0.0);
}

TEST(BatchedBench, RunsOnAHalfPrecisionCache) {
  const auto model = load_model("synthetic:stories260K");
  BatchedBenchOptions options;
  options.kv_dtype = KvDtype::kF16;
  BatchedBench bench(*model, options);
  const BatchedBenchResult r = bench.run({24, 3, 2});
  EXPECT_EQ(r.n_kv(), 54u);
  EXPECT_GT(r.t_tg, 0.0);
  EXPECT_EQ(nlohmann::json::parse(batched_bench_jsonl_row(r, options))["kv_dtype"], "f16");
}

}  // namespace
}  // namespace prunekv::bench
