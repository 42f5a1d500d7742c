// Loading the real stories260K files of ../shared/models: llama2.c and its GGUF conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "model/dequantize.h"
#include "model/model.h"
#include "tests/testing/golden.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/model_paths.h"

namespace prunekv {
namespace {

struct NamedTensor {
  std::string name;
  std::vector<float> a;
  std::vector<float> b;
};

// A tensor's values as fp32, whatever its type (the scalar reference dequantizer).
std::vector<float> values(const WeightView& w, size_t rows, size_t cols) {
  std::vector<float> out(rows * cols);
  for (size_t r = 0; r < rows; ++r) dequantize_row(w.type, w.row(r, cols), out.data() + r * cols, cols);
  return out;
}
std::vector<float> values(const float* v, size_t n) { return {v, v + n}; }

// Every weight tensor of two models with the same config, side by side.
std::vector<NamedTensor> paired_tensors(const Model& a, const Model& b) {
  const ModelConfig& c = a.config;
  const size_t dim = c.dim, hidden = c.hidden_dim, kv = c.kv_dim(), vocab = c.vocab_size;
  std::vector<NamedTensor> out = {
      {"token_embedding", values(a.token_embedding, vocab, dim), values(b.token_embedding, vocab, dim)},
      {"final_norm", values(a.final_norm, dim), values(b.final_norm, dim)},
      {"classifier", values(a.classifier, vocab, dim), values(b.classifier, vocab, dim)}};
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const LayerWeights &x = a.layers[l], &y = b.layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    out.push_back({p + "attn_norm", values(x.attn_norm, dim), values(y.attn_norm, dim)});
    out.push_back({p + "wq", values(x.wq, dim, dim), values(y.wq, dim, dim)});
    out.push_back({p + "wk", values(x.wk, kv, dim), values(y.wk, kv, dim)});
    out.push_back({p + "wv", values(x.wv, kv, dim), values(y.wv, kv, dim)});
    out.push_back({p + "wo", values(x.wo, dim, dim), values(y.wo, dim, dim)});
    out.push_back({p + "ffn_norm", values(x.ffn_norm, dim), values(y.ffn_norm, dim)});
    out.push_back({p + "w1", values(x.w1, hidden, dim), values(y.w1, hidden, dim)});
    out.push_back({p + "w2", values(x.w2, dim, hidden), values(y.w2, dim, hidden)});
    out.push_back({p + "w3", values(x.w3, hidden, dim), values(y.w3, hidden, dim)});
  }
  return out;
}

void expect_same_config(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.hidden_dim, b.hidden_dim);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.context_length, b.context_length);
  EXPECT_FLOAT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_FLOAT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.rope_layout, b.rope_layout);
  // Not tied_classifier: llama.cpp's converter writes output.weight as a copy of the embedding.
}

TEST(LoadModel, ReadsStories260KCheckpointHeaderAndWeights) {
  const std::string path = testing::model_path("stories260K.bin");
  PKV_REQUIRE_SHARED_FILE(path);
  const auto model = load_model(path);
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.name, "stories260K");
  EXPECT_EQ(c.dim, 64u);
  EXPECT_EQ(c.hidden_dim, 172u);
  EXPECT_EQ(c.num_layers, 5u);
  EXPECT_EQ(c.num_heads, 8u);
  EXPECT_EQ(c.num_kv_heads, 4u);
  EXPECT_EQ(c.vocab_size, 512u);
  EXPECT_EQ(c.context_length, 512u);
  EXPECT_EQ(c.rope_layout, RopeLayout::kAdjacentPairs);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.num_weight_params(), 260032u);  // the README's count
  EXPECT_EQ(model->classifier, model->token_embedding);
  EXPECT_EQ(model->stop_tokens, (std::vector<TokenId>{2, 1}));
  ASSERT_EQ(model->layers.size(), 5u);
  // Views into the file: the first float after the 28-byte header is the embedding's first.
  const auto bytes = testing::read_bytes(path);
  float first = 0, final_norm_first = 0;
  std::memcpy(&first, bytes.data() + 28, 4);
  const size_t final_norm_offset = 28 + 4 * (260032 - 64);
  std::memcpy(&final_norm_first, bytes.data() + final_norm_offset, 4);
  EXPECT_EQ(model->token_embedding.f32()[0], first);
  EXPECT_EQ(model->final_norm[0], final_norm_first);
  // tok512.bin beside the model is found because its 512 entries match.
  ASSERT_TRUE(model->tokenizer.has_value());
  EXPECT_EQ(model->tokenizer->vocab_size(), 512u);
}

TEST(LoadModel, Stories260KGgufF32MatchesCheckpointExactly) {
  const std::string bin = testing::model_path("stories260K.bin");
  const std::string gguf = testing::model_path("stories260K-f32.gguf");
  PKV_REQUIRE_SHARED_FILE(bin);
  PKV_REQUIRE_SHARED_FILE(gguf);
  const auto a = load_model(bin);
  const auto b = load_model(gguf);
  expect_same_config(a->config, b->config);
  EXPECT_EQ(b->bos_id, 1);
  EXPECT_EQ(b->eos_id, 2);
  EXPECT_EQ(b->stop_tokens, (std::vector<TokenId>{2, 1}));
  for (const auto& t : paired_tensors(*a, *b)) {
    size_t mismatches = 0;
    for (size_t i = 0; i < t.a.size(); ++i) mismatches += t.a[i] != t.b[i];
    EXPECT_EQ(mismatches, 0u) << t.name;
  }
}

TEST(LoadModel, Stories260KGgufF16MatchesCheckpointWithinHalfRounding) {
  const std::string bin = testing::model_path("stories260K.bin");
  const std::string gguf = testing::model_path("stories260K-f16.gguf");
  PKV_REQUIRE_SHARED_FILE(bin);
  PKV_REQUIRE_SHARED_FILE(gguf);
  const auto a = load_model(bin);
  const auto b = load_model(gguf);
  expect_same_config(a->config, b->config);
  for (const auto& t : paired_tensors(*a, *b)) {
    float worst = 0;
    for (size_t i = 0; i < t.a.size(); ++i) {
      // Half keeps 11 significant bits: relative error <= 2^-11, plus subnormal spacing.
      const float allowed = std::ldexp(std::fabs(t.a[i]), -11) + 6e-8f;
      worst = std::max(worst, std::fabs(t.a[i] - t.b[i]) / allowed);
    }
    EXPECT_LE(worst, 1.0f) << t.name;
  }
}

TEST(LoadModel, GgufTokenizerEncodesGoldenPromptsLikeTok512) {
  const std::string gguf = testing::model_path("stories260K-f32.gguf");
  PKV_REQUIRE_SHARED_FILE(gguf);
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  const auto model = load_model(gguf);
  ASSERT_TRUE(model->tokenizer.has_value());
  const auto cases = testing::load_golden();
  ASSERT_EQ(cases.size(), 60u);
  for (const auto& c : cases) {
    EXPECT_EQ(model->tokenizer->encode(c.prompt, true), c.prompt_tokens) << c.id;
    EXPECT_EQ(model->tokenizer->decode(c.output_tokens, c.prompt_tokens.back()), c.output_text) << c.id;
  }
}

// Every cut of a real file must be refused with FormatError, never crash (run under ASan too).
TEST(LoadModel, EveryTruncationOfRealFilesThrowsFormatError) {
  testing::TempDir dir;
  for (const char* name : {"stories260K.bin", "stories260K-f32.gguf", "stories260K-f16.gguf", "tok512.bin"}) {
    const std::string path = testing::model_path(name);
    PKV_REQUIRE_SHARED_FILE(path);
    const std::vector<uint8_t> bytes = testing::read_bytes(path);
    const size_t size = bytes.size();
    std::vector<size_t> cuts;
    for (size_t cut = 0; cut < 64; ++cut) cuts.push_back(cut);                // the headers
    for (size_t cut = 64; cut < 16384 && cut < size; cut += 97) cuts.push_back(cut);  // metadata
    for (size_t step = size / 61, cut = step; cut < size; cut += step) cuts.push_back(cut);  // tensors
    cuts.push_back(size - 1);
    for (const size_t cut : cuts) {
      // A fresh file per cut: rewriting one in place makes ext4 flush it to disk every time.
      const auto truncated = dir.file(std::string("cut-") + std::to_string(cut) + "-" + name);
      testing::write_bytes(truncated, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(cut)));
      if (std::string(name) == "tok512.bin") {
        EXPECT_THROW(Tokenizer::from_llama2c_file(truncated.string(), 512), FormatError) << name << " cut at " << cut;
      } else {
        EXPECT_THROW(load_model(truncated.string()), FormatError) << name << " cut at " << cut;
      }
      std::filesystem::remove(truncated);
    }
  }
}

}  // namespace
}  // namespace prunekv
