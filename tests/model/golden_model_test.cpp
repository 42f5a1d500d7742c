// The most important test of the project: with the full cache, greedy generation reproduces the
// llama2.c reference outputs of ../shared/golden for every prompt, whatever the batching, block
// size, chunking, thread count or file format.
#include <gtest/gtest.h>

#include <sstream>

#include "model/model.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/paged_runner.h"
#include "tests/testing/reference_forward.h"

namespace prunekv {
namespace {

struct GoldenRun {
  uint32_t block_size = 16;
  int threads = 2;
  size_t chunk_size = 0;  // 0 = whole prompt in one step
  bool batched = true;    // all prompts in one StepBatch, else one request at a time
};

std::string describe(const std::vector<TokenId>& got, const std::vector<TokenId>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream out;
  out << "first divergence at output token " << i << " of " << want.size() << " (got "
      << (i < got.size() ? std::to_string(got[i]) : "end") << ", want "
      << (i < want.size() ? std::to_string(want[i]) : "end") << ")";
  return out.str();
}

// Returns how many golden cases were reproduced exactly; reports each miss unless `misses`
// collects their indices instead.
size_t expect_golden(const std::string& model_file, const GoldenRun& run, std::vector<size_t>* misses = nullptr) {
  const auto cases = testing::load_golden();
  EXPECT_EQ(cases.size(), 60u) << testing::golden_path();
  LoadOptions options;
  if (model_file.ends_with(".bin")) options.tokenizer_path = testing::model_path("tok512.bin");
  auto model = load_model(testing::model_path(model_file), options);

  std::vector<std::vector<TokenId>> prompts;
  std::vector<size_t> max_new;
  for (const auto& c : cases) {
    prompts.push_back(c.prompt_tokens);
    max_new.push_back(size_t(c.max_tokens));
  }
  std::vector<std::vector<TokenId>> outputs;
  if (run.batched) {
    outputs = testing::generate_greedy_batched(*model, prompts, max_new, run.block_size, run.threads, run.chunk_size);
  } else {
    for (size_t i = 0; i < cases.size(); ++i) {
      outputs.push_back(testing::generate_greedy_batched(*model, {prompts[i]}, {max_new[i]}, run.block_size,
                                                         run.threads, run.chunk_size)[0]);
    }
  }
  size_t matched = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    if (outputs[i] == cases[i].output_tokens) {
      ++matched;
    } else if (misses) {
      misses->push_back(i);
    } else {
      ADD_FAILURE() << model_file << " " << cases[i].id << ": " << describe(outputs[i], cases[i].output_tokens);
    }
  }
  return matched;
}

TEST(GoldenModel, Llama2cOneRequestAtATimeReproducesEveryOutput) {
  PKV_REQUIRE_SHARED_FILE(testing::model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  EXPECT_EQ(expect_golden("stories260K.bin", {.threads = 1, .batched = false}), 60u);
}

TEST(GoldenModel, Llama2cAllSixtyBatchedInOneStepReproduceEveryOutput) {
  PKV_REQUIRE_SHARED_FILE(testing::model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  EXPECT_EQ(expect_golden("stories260K.bin", {.threads = 2}), 60u);
}

TEST(GoldenModel, Llama2cBatchedWithChunkedPrefillAndOtherBlockSizes) {
  PKV_REQUIRE_SHARED_FILE(testing::model_path("stories260K.bin"));
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  EXPECT_EQ(expect_golden("stories260K.bin", {.block_size = 1, .threads = 2, .chunk_size = 37}), 60u);
  EXPECT_EQ(expect_golden("stories260K.bin", {.block_size = 64, .threads = 1, .chunk_size = 100}), 60u);
}

TEST(GoldenModel, GgufF32ReproducesEveryOutput) {
  PKV_REQUIRE_SHARED_FILE(testing::model_path("stories260K-f32.gguf"));
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  EXPECT_EQ(expect_golden("stories260K-f32.gguf", {.threads = 2}), 60u);
  EXPECT_EQ(expect_golden("stories260K-f32.gguf", {.threads = 1, .chunk_size = 50, .batched = false}), 60u);
}

// F16 weights are not the fp32 weights the golden outputs came from: on this model's near-tie
// logits one prompt (s003) flips at its second token. Every miss must then be the weights' doing,
// so the scalar reference on the same F16 weights must produce exactly what the engine did.
TEST(GoldenModel, GgufF16MatchesGoldenOrTheReferenceOnTheSameWeights) {
  const std::string file = "stories260K-f16.gguf";
  PKV_REQUIRE_SHARED_FILE(testing::model_path(file));
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  std::vector<size_t> misses;
  EXPECT_GE(expect_golden(file, {.threads = 2}, &misses), 59u);
  const auto cases = testing::load_golden();
  auto model = load_model(testing::model_path(file));
  for (size_t i : misses) {
    const auto engine = testing::generate_greedy_batched(*model, {cases[i].prompt_tokens},
                                                         {size_t(cases[i].max_tokens)}, 16, 1)[0];
    testing::ReferenceForward ref(*model);
    ref.prefill(cases[i].prompt_tokens);
    const auto expected = ref.generate_greedy(size_t(cases[i].max_tokens), model->stop_tokens);
    EXPECT_EQ(engine, expected) << cases[i].id << ": " << describe(engine, expected);
  }
}

}  // namespace
}  // namespace prunekv
