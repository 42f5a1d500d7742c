// Synthetic models: exact shapes of the real ones, seeded weights, overridable context.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "model/model.h"
#include "tests/testing/model_paths.h"

namespace prunekv {
namespace {

TEST(SyntheticModel, NamesListEveryShape) {
  EXPECT_EQ(synthetic_model_names(),
            (std::vector<std::string>{"stories15M", "stories42M", "stories110M", "gqa-small", "stories260K"}));
}

TEST(SyntheticModel, Stories15MHasTheRealShape) {
  const auto model = load_model("synthetic:stories15M");
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.name, "synthetic:stories15M");
  EXPECT_EQ(c.dim, 288u);
  EXPECT_EQ(c.hidden_dim, 768u);
  EXPECT_EQ(c.num_layers, 6u);
  EXPECT_EQ(c.num_heads, 6u);
  EXPECT_EQ(c.num_kv_heads, 6u);
  EXPECT_EQ(c.vocab_size, 32000u);
  EXPECT_EQ(c.context_length, 256u);
  EXPECT_EQ(c.num_weight_params(), 15191712u);  // karpathy's stories15M.bin parameter count
  EXPECT_EQ(model->layers.size(), 6u);
  EXPECT_EQ(model->classifier, model->token_embedding);
  EXPECT_FALSE(model->tokenizer.has_value());
}

TEST(SyntheticModel, GqaShapesMatchTheirSpecs) {
  const auto gqa = load_model("synthetic:gqa-small");
  EXPECT_EQ(gqa->config.dim, 256u);
  EXPECT_EQ(gqa->config.hidden_dim, 704u);
  EXPECT_EQ(gqa->config.num_layers, 4u);
  EXPECT_EQ(gqa->config.num_heads, 8u);
  EXPECT_EQ(gqa->config.num_kv_heads, 2u);
  EXPECT_EQ(gqa->config.vocab_size, 4096u);
  EXPECT_EQ(gqa->config.context_length, 2048u);
  const auto tiny = load_model("synthetic:stories260K");
  EXPECT_EQ(tiny->config.num_weight_params(), 260032u);
  EXPECT_EQ(tiny->config.group_size(), 2u);
}

TEST(SyntheticModel, SameSeedSameWeightsOtherSeedOtherWeights) {
  LoadOptions a, b;
  a.seed = b.seed = 42;
  const auto m1 = load_model("synthetic:stories260K", a);
  const auto m2 = load_model("synthetic:stories260K", b);
  b.seed = 43;
  const auto m3 = load_model("synthetic:stories260K", b);
  const size_t n = 64 * 64;
  EXPECT_EQ(std::memcmp(m1->layers[3].wq.f32(), m2->layers[3].wq.f32(), n * 4), 0);
  EXPECT_NE(std::memcmp(m1->layers[3].wq.f32(), m3->layers[3].wq.f32(), n * 4), 0);
}

TEST(SyntheticModel, WeightsAreBoundedAndNormsAreOne) {
  const auto model = load_model("synthetic:gqa-small");
  const ModelConfig& c = model->config;
  const float bound = std::sqrt(3.0f / static_cast<float>(c.dim));
  double sum_sq = 0;
  const size_t n = size_t{c.hidden_dim} * c.dim;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_LE(std::fabs(model->layers[2].w1.f32()[i]), bound) << i;
    sum_sq += double{model->layers[2].w1.f32()[i]} * model->layers[2].w1.f32()[i];
  }
  // Uniform in +-sqrt(3/in) has variance 1/in.
  EXPECT_NEAR(sum_sq / static_cast<double>(n) * c.dim, 1.0, 0.05);
  for (size_t i = 0; i < c.dim; ++i) {
    EXPECT_EQ(model->layers[0].attn_norm[i], 1.0f);
    EXPECT_EQ(model->final_norm[i], 1.0f);
  }
}

TEST(SyntheticModel, ContextLengthCanBeOverridden) {
  LoadOptions options;
  options.context_length = 4096;
  EXPECT_EQ(load_model("synthetic:stories15M", options)->config.context_length, 4096u);
}

TEST(SyntheticModel, TokenizerMustMatchVocabulary) {
  const std::string tok512 = testing::model_path("tok512.bin");
  PKV_REQUIRE_SHARED_FILE(tok512);
  LoadOptions options;
  options.tokenizer_path = tok512;
  EXPECT_EQ(load_model("synthetic:stories260K", options)->tokenizer->vocab_size(), 512u);
  EXPECT_THROW(load_model("synthetic:gqa-small", options), FormatError);
}

}  // namespace
}  // namespace prunekv
