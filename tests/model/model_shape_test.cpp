#include "model/model_shape.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/testing/gguf_writer.h"

namespace prunekv {
namespace {

TEST(ModelShape, NamedShapesMatchTheirPublishedConfigs) {
  const ModelConfig llama8 = model_shape("Llama-3-8B");
  EXPECT_EQ(llama8.num_layers, 32u);
  EXPECT_EQ(llama8.dim, 4096u);
  EXPECT_EQ(llama8.num_heads, 32u);
  EXPECT_EQ(llama8.num_kv_heads, 8u);
  EXPECT_EQ(llama8.head_dim(), 128u);
  EXPECT_EQ(llama8.hidden_dim, 14336u);
  EXPECT_EQ(llama8.vocab_size, 128256u);
  EXPECT_EQ(llama8.context_length, 8192u);

  const ModelConfig llama70 = model_shape("llama-3-70b");  // case-insensitive
  EXPECT_EQ(llama70.num_layers, 80u);
  EXPECT_EQ(llama70.dim, 8192u);
  EXPECT_EQ(llama70.num_heads, 64u);
  EXPECT_EQ(llama70.hidden_dim, 28672u);

  const ModelConfig mistral = model_shape("Mistral-7B");
  EXPECT_EQ(mistral.vocab_size, 32768u);
  EXPECT_EQ(mistral.context_length, 32768u);

  const ModelConfig qwen = model_shape("Qwen2.5-7B");
  EXPECT_EQ(qwen.num_layers, 28u);
  EXPECT_EQ(qwen.dim, 3584u);
  EXPECT_EQ(qwen.num_kv_heads, 4u);
  EXPECT_EQ(qwen.head_dim(), 128u);
  EXPECT_EQ(qwen.hidden_dim, 18944u);
  EXPECT_EQ(qwen.vocab_size, 152064u);
}

TEST(ModelShape, UnknownNameListsTheKnownShapes) {
  try {
    model_shape("GPT-5");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("GPT-5"), std::string::npos);
    EXPECT_NE(message.find("Llama-3-8B"), std::string::npos);
  }
}

TEST(ModelShape, SyntheticShapesComeFromTheSyntheticModels) {
  const ModelConfig config = model_shape("synthetic:stories15M");
  EXPECT_EQ(config.dim, 288u);
  EXPECT_EQ(config.num_layers, 6u);
  EXPECT_EQ(config.hidden_dim, 768u);
  EXPECT_EQ(config.vocab_size, 32000u);
}

TEST(ModelShape, ParsesKvDtypes) {
  EXPECT_EQ(parse_kv_dtype("fp16"), KvDtype::kF16);
  EXPECT_EQ(parse_kv_dtype("F32"), KvDtype::kF32);
  EXPECT_THROW(parse_kv_dtype("int4"), ConfigError);
}

TEST(ModelShape, ReadsAGgufHeaderWithoutTensors) {
  testing::TempDir dir;
  testing::GgufWriter gguf;
  gguf.set_string("general.architecture", "llama");
  gguf.set_string("general.name", "tiny-gguf");
  gguf.set_uint32("llama.embedding_length", 64);
  gguf.set_uint32("llama.feed_forward_length", 172);
  gguf.set_uint32("llama.block_count", 5);
  gguf.set_uint32("llama.attention.head_count", 8);
  gguf.set_uint32("llama.attention.head_count_kv", 4);
  gguf.set_uint32("llama.context_length", 512);
  gguf.set_string_array("tokenizer.ggml.tokens", {"t0", "t1", "t2", "t3", "t4", "t5", "t6"});
  const auto path = dir.file("shape.gguf");
  gguf.write(path);
  const ModelConfig config = model_shape(path.string());
  EXPECT_EQ(config.name, "tiny-gguf");
  EXPECT_EQ(config.dim, 64u);
  EXPECT_EQ(config.hidden_dim, 172u);
  EXPECT_EQ(config.num_layers, 5u);
  EXPECT_EQ(config.num_heads, 8u);
  EXPECT_EQ(config.num_kv_heads, 4u);
  EXPECT_EQ(config.context_length, 512u);
  EXPECT_EQ(config.vocab_size, 7u);
}

TEST(ModelShape, GgufMissingAFieldNamesIt) {
  testing::TempDir dir;
  testing::GgufWriter gguf;
  gguf.set_string("general.architecture", "llama");
  gguf.set_uint32("llama.embedding_length", 64);
  const auto path = dir.file("missing.gguf");
  gguf.write(path);
  try {
    model_shape(path.string());
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("llama.feed_forward_length"), std::string::npos) << e.what();
  }
}

TEST(ModelShape, TruncatedGgufIsAFormatError) {
  testing::TempDir dir;
  testing::GgufWriter gguf;
  gguf.set_string("general.architecture", "llama");
  gguf.set_uint32("llama.embedding_length", 64);
  auto bytes = gguf.bytes();
  bytes.resize(bytes.size() - 3);
  const auto path = dir.file("truncated.gguf");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  EXPECT_THROW(model_shape(path.string()), FormatError);
}

TEST(ModelShape, ReadsALlama2cHeader) {
  const auto path = (std::filesystem::temp_directory_path() / "prunekv_model_shape_test.bin").string();
  const int32_t header[7] = {288, 768, 6, 6, 6, -32000, 256};  // stories15M, untied classifier
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof(header));
  const ModelConfig config = model_shape(path);
  EXPECT_EQ(config.dim, 288u);
  EXPECT_EQ(config.hidden_dim, 768u);
  EXPECT_EQ(config.num_layers, 6u);
  EXPECT_EQ(config.num_heads, 6u);
  EXPECT_EQ(config.vocab_size, 32000u);
  EXPECT_EQ(config.context_length, 256u);
  std::filesystem::remove(path);
}

TEST(ModelShape, Llama2cHeaderWithZeroLayersIsAFormatError) {
  const auto path = (std::filesystem::temp_directory_path() / "prunekv_model_shape_bad.bin").string();
  const int32_t header[7] = {288, 768, 0, 6, 6, 32000, 256};
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof(header));
  EXPECT_THROW(model_shape(path), FormatError);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace prunekv
