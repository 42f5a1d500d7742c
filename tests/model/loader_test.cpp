// llama2.c checkpoints written by the test, load_model dispatch, and the tokenizer file format.
#include <gtest/gtest.h>

#include <cstring>
#include <fmt/format.h>

#include "common/error.h"
#include "model/model.h"
#include "tests/testing/gguf_writer.h"

namespace prunekv {
namespace {

struct Header {
  int32_t dim = 16, hidden = 24, layers = 2, heads = 4, kv_heads = 2, vocab = 260, seq_len = 8;
};

// Floats in run.c's order: value i of the body is i * 1e-3 so each view's first element tells
// where it points.
std::vector<uint8_t> llama2c_bytes(const Header& h, bool separate_classifier) {
  const size_t dim = h.dim, hidden = h.hidden, layers = h.layers, vocab = h.vocab;
  const size_t kv_dim = dim / h.heads * h.kv_heads, head = dim / h.heads;
  const size_t floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim) + dim +
                        h.seq_len * head + (separate_classifier ? vocab * dim : 0);
  std::vector<uint8_t> bytes(28 + 4 * floats);
  Header stored = h;
  if (separate_classifier) stored.vocab = -stored.vocab;
  std::memcpy(bytes.data(), &stored, 28);
  for (size_t i = 0; i < floats; ++i) {
    const float v = static_cast<float>(i) * 1e-3f;
    std::memcpy(bytes.data() + 28 + 4 * i, &v, 4);
  }
  return bytes;
}

void expect_format_error(const std::filesystem::path& path, const std::vector<std::string>& parts) {
  try {
    load_model(path.string());
    ADD_FAILURE() << "no FormatError; expected one mentioning " << parts.front();
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' in: " << message;
  }
}

float at(size_t index) { return static_cast<float>(index) * 1e-3f; }

TEST(Llama2cLoader, ViewsFollowRunCOrder) {
  testing::TempDir dir;
  const auto path = dir.file("tiny.bin");
  testing::write_bytes(path, llama2c_bytes({}, false));
  const auto model = load_model(path.string());
  const size_t dim = 16, hidden = 24, kv = 8, vocab = 260;
  EXPECT_EQ(model->config.name, "tiny");
  EXPECT_EQ(model->config.kv_dim(), kv);
  EXPECT_TRUE(model->config.tied_classifier);
  EXPECT_EQ(model->token_embedding.f32()[0], at(0));
  size_t offset = vocab * dim;
  EXPECT_EQ(model->layers[0].attn_norm[0], at(offset));
  EXPECT_EQ(model->layers[1].attn_norm[0], at(offset + dim));
  offset += 2 * dim;
  EXPECT_EQ(model->layers[1].wq.f32()[0], at(offset + dim * dim));
  offset += 2 * dim * dim;
  EXPECT_EQ(model->layers[0].wk.f32()[0], at(offset));
  offset += 2 * kv * dim;
  EXPECT_EQ(model->layers[1].wv.f32()[0], at(offset + kv * dim));
  offset += 2 * kv * dim + 2 * dim * dim;  // wv, wo
  EXPECT_EQ(model->layers[0].ffn_norm[0], at(offset));
  offset += 2 * dim;
  EXPECT_EQ(model->layers[0].w1.f32()[0], at(offset));
  offset += 2 * hidden * dim;
  EXPECT_EQ(model->layers[1].w2.f32()[0], at(offset + dim * hidden));
  offset += 2 * dim * hidden;
  EXPECT_EQ(model->layers[0].w3.f32()[0], at(offset));
  offset += 2 * hidden * dim;
  EXPECT_EQ(model->final_norm[0], at(offset));
  EXPECT_EQ(model->classifier, model->token_embedding);
  EXPECT_FALSE(model->tokenizer.has_value());  // nothing beside it
}

TEST(Llama2cLoader, NegativeVocabMeansSeparateClassifierAfterRopeTables) {
  testing::TempDir dir;
  const auto path = dir.file("untied.bin");
  testing::write_bytes(path, llama2c_bytes({}, true));
  const auto model = load_model(path.string());
  EXPECT_FALSE(model->config.tied_classifier);
  EXPECT_EQ(model->config.vocab_size, 260u);
  const size_t before_classifier = model->config.num_weight_params() - 260 * 16 + 8 * 4;  // + freq_cis
  EXPECT_EQ(model->classifier.f32()[0], at(before_classifier));
}

// A file of `file_bytes` zero bytes starting with the 28-byte header `h`.
std::filesystem::path write_header(const testing::TempDir& dir, const std::string& name, const Header& h,
                                   size_t file_bytes) {
  std::vector<uint8_t> bytes(file_bytes);
  std::memcpy(bytes.data(), &h, 28);
  const auto path = dir.file(name);
  testing::write_bytes(path, bytes);
  return path;
}

TEST(Llama2cLoader, RejectsBadHeadersAndSizes) {
  testing::TempDir dir;
  {
    const auto path = dir.file("short.bin");
    testing::write_bytes(path, std::vector<uint8_t>(20, 1));
    expect_format_error(path, {"truncated llama2.c header", "28 bytes", "found 20"});
  }
  {
    Header h;
    h.dim = 0;
    expect_format_error(write_header(dir, "zero.bin", h, 28 + 400), {"dim = 0", "positive"});
  }
  {
    Header h;
    h.heads = 3;
    expect_format_error(write_header(dir, "heads.bin", h, 4096), {"n_heads = 3 must divide dim = 16"});
  }
  {
    Header h;
    h.kv_heads = 3;
    expect_format_error(write_header(dir, "kv.bin", h, 4096), {"n_kv_heads = 3 must divide n_heads = 4"});
  }
  {
    Header h;
    h.layers = 1000000;
    expect_format_error(write_header(dir, "layers.bin", h, 4096), {"n_layers = 1000000"});
  }
  {
    auto bytes = llama2c_bytes({}, false);
    bytes.resize(bytes.size() - 4);
    const auto path = dir.file("cut.bin");
    testing::write_bytes(path, bytes);
    expect_format_error(path, {"does not match the header", "truncated"});
  }
  {
    auto bytes = llama2c_bytes({}, false);
    bytes.resize(bytes.size() + 4);
    const auto path = dir.file("long.bin");
    testing::write_bytes(path, bytes);
    expect_format_error(path, {"does not match the header"});
  }
  {
    std::vector<uint8_t> bytes(256, 0);
    const uint32_t magic = 0x616b3432;
    std::memcpy(bytes.data(), &magic, 4);
    const auto path = dir.file("v1.bin");
    testing::write_bytes(path, bytes);
    expect_format_error(path, {"version 1/2", "not supported"});
  }
}

TEST(LoadModel, MissingFileAndUnknownSyntheticNameThrow) {
  EXPECT_THROW(load_model("/nonexistent/prunekv/model.bin"), FormatError);
  EXPECT_THROW(load_model("synthetic:no-such-model"), ConfigError);
}

TEST(LoadModel, ContextLengthOverrideAppliesToFiles) {
  testing::TempDir dir;
  const auto path = dir.file("tiny.bin");
  testing::write_bytes(path, llama2c_bytes({}, false));
  LoadOptions options;
  options.context_length = 32;
  EXPECT_EQ(load_model(path.string(), options)->config.context_length, 32u);
}

// A llama2.c tokenizer.bin for a 260-entry vocabulary: unk, BOS, EOS, 256 bytes, " ".
std::vector<uint8_t> tokenizer_bytes(size_t entries) {
  std::vector<uint8_t> out;
  auto put = [&](const void* p, size_t n) { out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n); };
  const int32_t max_len = 8;
  put(&max_len, 4);
  for (size_t i = 0; i < entries; ++i) {
    const std::string piece = i == 0 ? "<unk>" : i == 1 ? "\n<s>\n" : i == 2 ? "\n</s>\n" : i < 259 ? fmt::format("<0x{:02X}>", i - 3) : " ";
    const float score = 0;
    const auto len = static_cast<int32_t>(piece.size());
    put(&score, 4);
    put(&len, 4);
    put(piece.data(), piece.size());
  }
  return out;
}

TEST(Llama2cLoader, FindsMatchingTokenizerBesideModel) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("tiny.bin"), llama2c_bytes({}, false));
  testing::write_bytes(dir.file("tokenizer.bin"), tokenizer_bytes(300));  // wrong size: skipped
  EXPECT_FALSE(load_model(dir.file("tiny.bin").string())->tokenizer.has_value());
  testing::write_bytes(dir.file("tok260.bin"), tokenizer_bytes(260));
  const auto model = load_model(dir.file("tiny.bin").string());
  ASSERT_TRUE(model->tokenizer.has_value());
  EXPECT_EQ(model->tokenizer->encode("\x41", true), (std::vector<TokenId>{1, 259, 3 + 0x41}));
  // An explicit tokenizer must match the vocabulary exactly.
  LoadOptions options;
  options.tokenizer_path = dir.file("tokenizer.bin").string();
  try {
    load_model(dir.file("tiny.bin").string(), options);
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("holds 300 entries, expected the model's vocab_size = 260"), std::string::npos)
        << e.what();
  }
}

TEST(Tokenizer, RejectsMalformedTokenizerFiles) {
  testing::TempDir dir;
  auto bytes = tokenizer_bytes(260);
  bytes.resize(bytes.size() - 1);
  testing::write_bytes(dir.file("cut.bin"), bytes);
  EXPECT_THROW(Tokenizer::from_llama2c_file(dir.file("cut.bin").string(), 260), FormatError);
  auto negative = tokenizer_bytes(260);
  const int32_t bad_len = -5;
  std::memcpy(negative.data() + 8, &bad_len, 4);  // the first entry's length
  testing::write_bytes(dir.file("neg.bin"), negative);
  EXPECT_THROW(Tokenizer::from_llama2c_file(dir.file("neg.bin").string(), 260), FormatError);
  EXPECT_THROW(Tokenizer::from_llama2c_file(dir.file("absent.bin").string(), 260), FormatError);
}

}  // namespace
}  // namespace prunekv
