// GGUF loading from small files the tests write themselves: values, conversions, and one
// error per kind of broken file (each a FormatError naming the file and what was wrong).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "model/dequantize.h"
#include "model/gguf_reader.h"
#include "model/mapped_file.h"
#include "model/model.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/quantize.h"

namespace prunekv {
namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.dim = 32;
  c.hidden_dim = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.vocab_size = 300;
  c.context_length = 64;
  c.rope_theta = 500000.0f;
  c.norm_eps = 1e-6f;
  return c;
}

// Writes `writer` and expects load_model to throw FormatError whose message holds every part.
void expect_format_error(const testing::GgufWriter& writer, const std::vector<std::string>& parts) {
  testing::TempDir dir;
  const auto path = dir.file("broken.gguf");
  writer.write(path);
  try {
    load_model(path.string());
    ADD_FAILURE() << "no FormatError; expected one mentioning " << parts.front();
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' in: " << message;
  }
}

TEST(GgufLoader, LoadsConfigWeightsAndVocabulary) {
  const ModelConfig c = tiny_config();
  testing::TempDir dir;
  const auto path = dir.file("tiny.gguf");
  testing::make_llama_gguf(c, 7).write(path);
  const auto model = load_model(path.string());
  EXPECT_EQ(model->config.name, "tiny-test");
  EXPECT_EQ(model->config.dim, 32u);
  EXPECT_EQ(model->config.hidden_dim, 48u);
  EXPECT_EQ(model->config.num_layers, 2u);
  EXPECT_EQ(model->config.num_heads, 4u);
  EXPECT_EQ(model->config.num_kv_heads, 2u);
  EXPECT_EQ(model->config.vocab_size, 300u);
  EXPECT_EQ(model->config.context_length, 64u);
  EXPECT_FLOAT_EQ(model->config.rope_theta, 500000.0f);
  EXPECT_FLOAT_EQ(model->config.norm_eps, 1e-6f);
  EXPECT_EQ(model->config.rope_layout, RopeLayout::kAdjacentPairs);
  EXPECT_TRUE(model->config.tied_classifier);
  EXPECT_EQ(model->classifier, model->token_embedding);
  // ggml [in, out] is row-major [out][in]: the file's values in file order.
  const auto wk = testing::seeded_values("blk.1.attn_k.weight", 32 * 16, 7);
  EXPECT_EQ(std::memcmp(model->layers[1].wk.f32(), wk.data(), wk.size() * 4), 0);
  const auto down = testing::seeded_values("blk.0.ffn_down.weight", 48 * 32, 7);
  EXPECT_EQ(std::memcmp(model->layers[0].w2.f32(), down.data(), down.size() * 4), 0);
  // The SentencePiece "▁" becomes a plain space; byte tokens start at id 3.
  ASSERT_TRUE(model->tokenizer.has_value());
  EXPECT_EQ(model->tokenizer->piece(259), " ");
  EXPECT_EQ(model->tokenizer->piece(261), " a");
  EXPECT_EQ(model->tokenizer->encode("a\x01", true), (std::vector<TokenId>{1, 261, 3 + 1}));
  EXPECT_EQ(model->stop_tokens, (std::vector<TokenId>{2, 1}));
}

TEST(GgufLoader, SeparateOutputTensorBecomesTheClassifier) {
  ModelConfig c = tiny_config();
  c.tied_classifier = false;
  testing::TempDir dir;
  const auto path = dir.file("untied.gguf");
  testing::make_llama_gguf(c, 3).write(path);
  const auto model = load_model(path.string());
  EXPECT_FALSE(model->config.tied_classifier);
  const auto output = testing::seeded_values("output.weight", 32 * 300, 3);
  EXPECT_EQ(std::memcmp(model->classifier.f32(), output.data(), output.size() * 4), 0);
}

TEST(GgufLoader, KeepsF16Bf16AndQ8_0InTheFileWithoutWidening) {
  const ModelConfig c = tiny_config();
  testing::GgufWriter w = testing::make_llama_gguf(c, 5);
  const auto q = testing::seeded_values("blk.0.attn_q.weight", 32 * 32, 5);
  const auto k = testing::seeded_values("blk.0.attn_k.weight", 32 * 16, 5);
  const auto v = testing::seeded_values("blk.0.attn_v.weight", 32 * 16, 5);
  w.add_tensor_f16("blk.0.attn_q.weight", {32, 32}, q);
  w.add_tensor_bf16("blk.0.attn_k.weight", {32, 16}, k);
  w.add_tensor_q8_0("blk.0.attn_v.weight", {32, 16}, v);
  testing::TempDir dir;
  const auto path = dir.file("mixed.gguf");
  w.write(path);
  const auto model = load_model(path.string());
  const LayerWeights& l0 = model->layers[0];
  EXPECT_EQ(l0.wq.type, GgmlType::kF16);
  EXPECT_EQ(l0.wk.type, GgmlType::kBF16);
  EXPECT_EQ(l0.wv.type, GgmlType::kQ8_0);
  EXPECT_EQ(l0.wo.type, GgmlType::kF32);
  // Views into the memory map: the tensor's bytes are the file's, at its data offset.
  const GgufReader reader(MappedFile::open(path.string()));
  const GgufTensorInfo* q_info = reader.find_tensor("blk.0.attn_q.weight");
  const auto file = testing::read_bytes(path);
  ASSERT_EQ(std::memcmp(l0.wq.data, file.data() + (q_info->data - reader.file()->data()), q_info->num_bytes), 0);
  std::vector<float> row(32);
  for (size_t r = 0; r < 32; ++r) {
    dequantize_row(l0.wq.type, l0.wq.row(r, 32), row.data(), 32);
    for (size_t i = 0; i < 32; ++i) ASSERT_EQ(row[i], static_cast<float>(static_cast<_Float16>(q[r * 32 + i]))) << i;
  }
  for (size_t r = 0; r < 16; ++r) {
    dequantize_row(l0.wk.type, l0.wk.row(r, 32), row.data(), 32);
    for (size_t i = 0; i < 32; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &k[r * 32 + i], 4);
      bits &= 0xFFFF0000u;
      float truncated;
      std::memcpy(&truncated, &bits, 4);
      ASSERT_EQ(row[i], truncated) << i;
    }
  }
  // Q8_0 keeps 8 bits per block of 32 (scale max|x|/127): error <= half a step, plus the
  // scale's own half rounding.
  for (size_t r = 0; r < 16; ++r) {
    dequantize_row(l0.wv.type, l0.wv.row(r, 32), row.data(), 32);
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[r * 32 + j]));
    for (size_t j = 0; j < 32; ++j) ASSERT_NEAR(row[j], v[r * 32 + j], amax / 127 * 0.51f + 1e-3f);
  }
}

TEST(GgufLoader, HalfConversionCoversSubnormalsAndInfinities) {
  const ModelConfig c = tiny_config();
  testing::GgufWriter w = testing::make_llama_gguf(c, 5);
  std::vector<float> norm(32, 1.0f);
  norm[0] = 6.0e-8f;       // the smallest half subnormal
  norm[1] = -3.0e-5f;      // a larger subnormal
  norm[2] = 65504.0f;      // the largest half
  norm[3] = INFINITY;
  norm[4] = -0.0f;
  norm[5] = 6.103515625e-05f;  // the smallest normal
  w.add_tensor_f16("output_norm.weight", {32}, norm);
  testing::TempDir dir;
  const auto path = dir.file("half.gguf");
  w.write(path);
  const auto model = load_model(path.string());
  for (size_t i = 0; i < norm.size(); ++i)
    EXPECT_EQ(model->final_norm[i], static_cast<float>(static_cast<_Float16>(norm[i]))) << i;
  EXPECT_TRUE(std::signbit(model->final_norm[4]));
}

TEST(GgufLoader, ReadsVersion2AndCustomAlignment) {
  testing::GgufWriter w = testing::make_llama_gguf(tiny_config(), 9);
  w.version = 2;
  w.alignment = 64;
  testing::TempDir dir;
  const auto path = dir.file("v2.gguf");
  w.write(path);
  const auto model = load_model(path.string());
  const auto up = testing::seeded_values("blk.1.ffn_up.weight", 32 * 48, 9);
  EXPECT_EQ(std::memcmp(model->layers[1].w3.f32(), up.data(), up.size() * 4), 0);
}

TEST(GgufLoader, RejectsWrongMagicAndVersion) {
  testing::GgufWriter w = testing::make_llama_gguf(tiny_config());
  w.version = 1;
  expect_format_error(w, {"version 1", "expected 2 or 3"});
  // A GGUF reader on a non-GGUF file (load_model would route it to the llama2.c loader).
  testing::TempDir dir;
  const auto path = dir.file("not.gguf");
  testing::write_bytes(path, std::vector<uint8_t>(64, 'x'));
  try {
    GgufReader reader(MappedFile::open(path.string()));
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("wrong magic"), std::string::npos) << e.what();
  }
}

TEST(GgufLoader, ACorruptMagicSaysNotAGgufFile) {
  std::vector<uint8_t> bytes = testing::make_llama_gguf(tiny_config()).bytes();
  bytes[0] = 'X';
  testing::TempDir dir;
  for (const char* name : {"model.gguf", "model.bin"}) {
    const auto path = dir.file(name);
    testing::write_bytes(path, bytes);
    try {
      load_model(path.string());
      ADD_FAILURE() << "no FormatError";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("not a GGUF file"), std::string::npos) << e.what();
    }
  }
}

TEST(GgufLoader, RejectsTensorBlocksBeyondBlockCount) {
  ModelConfig c = tiny_config();
  testing::GgufWriter w = testing::make_llama_gguf(c);
  w.set_uint32("llama.block_count", 1);  // blk.1.* is still there
  expect_format_error(w, {"blk.1.", "block 1", "llama.block_count = 1"});
}

TEST(GgufLoader, AnUnsupportedTokenizerIsNamedAndKeptForTextRequestsToRefuse) {
  testing::GgufWriter w = testing::make_llama_gguf(tiny_config());
  w.set_string("tokenizer.ggml.model", "gpt2");
  testing::TempDir dir;
  const auto path = dir.file("gpt2.gguf");
  w.write(path);
  const auto model = load_model(path.string());
  EXPECT_FALSE(model->tokenizer.has_value());
  EXPECT_NE(model->unusable_tokenizer.find("tokenizer.ggml.model = 'gpt2'"), std::string::npos)
      << model->unusable_tokenizer;
}

TEST(GgufLoader, RejectsUnsupportedAndUnknownTensorTypes) {
  testing::GgufWriter w = testing::make_llama_gguf(tiny_config());
  w.add_tensor_raw("blk.0.attn_q.weight", {32, 32}, 3, std::vector<uint8_t>(32 * 32 / 32 * 20));  // Q4_1
  expect_format_error(w, {"blk.0.attn_q.weight", "type Q4_1", "F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K"});
  w.add_tensor_raw("blk.0.attn_q.weight", {32, 32}, 28, std::vector<uint8_t>(32 * 32 * 8));  // F64
  expect_format_error(w, {"blk.0.attn_q.weight", "type F64"});
  w.add_tensor_raw("blk.0.attn_q.weight", {32, 32}, 99, std::vector<uint8_t>(32 * 32 * 4));
  expect_format_error(w, {"blk.0.attn_q.weight", "unknown ggml type 99"});
}

TEST(GgufLoader, RejectsAbsurdDimensions) {
  const ModelConfig c = tiny_config();
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_uint32("llama.embedding_length", 0);
    expect_format_error(w, {"dim = 0"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_uint32("llama.attention.head_count", 5);
    expect_format_error(w, {"n_heads = 5", "dim = 32"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_uint32("llama.attention.head_count_kv", 3);
    expect_format_error(w, {"n_kv_heads = 3 must divide n_heads = 4"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_uint32("llama.block_count", 1000000);
    expect_format_error(w, {"n_layers = 1000000"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_uint64("llama.context_length", uint64_t{1} << 40);
    expect_format_error(w, {"llama.context_length", "1099511627776"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_uint32("llama.rope.dimension_count", 4);
    expect_format_error(w, {"llama.rope.dimension_count = 4", "head_dim = 8"});
  }
}

TEST(GgufLoader, RejectsMissingMetadataAndTensors) {
  const ModelConfig c = tiny_config();
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.remove_metadata("llama.feed_forward_length");
    expect_format_error(w, {"missing metadata llama.feed_forward_length"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_string("general.architecture", "gpt2");
    expect_format_error(w, {"general.architecture = 'gpt2'", "expected 'llama'"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_string("llama.embedding_length", "32");
    expect_format_error(w, {"llama.embedding_length is string", "unsigned integer"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.remove_tensor("blk.1.ffn_down.weight");
    expect_format_error(w, {"missing tensor blk.1.ffn_down.weight", "[48, 32]"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.add_tensor_f32("blk.0.attn_k.weight", {32, 32}, std::vector<float>(32 * 32));
    expect_format_error(w, {"tensor blk.0.attn_k.weight has shape [32, 32], expected [32, 16]"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_uint32("tokenizer.ggml.eos_token_id", 300);
    expect_format_error(w, {"tokenizer.ggml.eos_token_id = 300", "vocab_size = 300"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_float_array("tokenizer.ggml.scores", std::vector<float>(10));
    expect_format_error(w, {"tokenizer.ggml.scores holds 10"});
  }
  {
    testing::GgufWriter w = testing::make_llama_gguf(c);
    w.set_int32_array("tokenizer.ggml.token_type", std::vector<int32_t>(10, 1));
    expect_format_error(w, {"tokenizer.ggml.token_type holds 10 types"});
  }
}

TEST(GgufLoader, RejectsTensorPastEndOfFile) {
  testing::GgufWriter w = testing::make_llama_gguf(tiny_config());
  std::vector<uint8_t> bytes = w.bytes();
  bytes.resize(bytes.size() - 4096);  // the last tensors' data is gone, the table is intact
  testing::TempDir dir;
  const auto path = dir.file("short.gguf");
  testing::write_bytes(path, bytes);
  try {
    load_model(path.string());
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("extends past the end of the file"), std::string::npos) << e.what();
  }
}

TEST(GgufLoader, RejectsQuantizedTensorsOfTheWrongSizeForTheirType) {
  testing::GgufWriter w = testing::make_llama_gguf(tiny_config());
  // Declared Q8_0 (34 bytes a block) but written as Q4_0 (18): it runs into the next tensor.
  const auto q = testing::seeded_values("blk.0.attn_q.weight", 32 * 32, 7);
  w.add_tensor_raw("blk.0.attn_q.weight", {32, 32}, 8, testing::quantize(GgmlType::kQ4_0, q));
  w.add_tensor("blk.0.attn_k.weight", {32, 16}, GgmlType::kF32, testing::seeded_values("k", 32 * 16, 7));
  expect_format_error(w, {"blk.0.attn_q.weight", "Q8_0", "overlaps tensor blk.0.attn_k.weight"});
  // The last tensor of the file, short by one block: past the end of the file.
  testing::GgufWriter last = testing::make_llama_gguf(tiny_config());
  auto bytes = testing::quantize(GgmlType::kQ8_0, q);
  bytes.resize(bytes.size() - kQ8_0BlockBytes);
  last.remove_tensor("blk.0.attn_q.weight");
  last.add_tensor_raw("blk.0.attn_q.weight", {32, 32}, 8, bytes);
  expect_format_error(last, {"blk.0.attn_q.weight", "extends past the end of the file"});
  // A K-quant row must be whole 256-value super-blocks.
  last.add_tensor_raw("blk.0.attn_q.weight", {32, 32}, 12, std::vector<uint8_t>(4 * kQ4_KBlockBytes));
  expect_format_error(last, {"blk.0.attn_q.weight", "Q4_K", "row of 32 elements, expected a multiple of 256"});
}

TEST(GgufLoader, EveryTruncationThrowsFormatError) {
  const std::vector<uint8_t> bytes = testing::make_llama_gguf(tiny_config()).bytes();
  testing::TempDir dir;
  for (size_t cut = 0; cut < bytes.size(); cut += cut < 8192 ? 13 : 1009) {
    const auto path = dir.file("cut-" + std::to_string(cut) + ".gguf");
    testing::write_bytes(path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(cut)));
    EXPECT_THROW(load_model(path.string()), FormatError) << "cut at " << cut;
    std::filesystem::remove(path);
  }
}

TEST(GgufLoader, RandomByteCorruptionNeverCrashes) {
  // Flipped bytes may still give a loadable file (a changed weight); what matters is that every
  // outcome is a model or a FormatError, never a crash (ASan watches the reads).
  const std::vector<uint8_t> good = testing::make_llama_gguf(tiny_config()).bytes();
  testing::TempDir dir;
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
  size_t rejected = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint8_t> bytes = good;
    const size_t header_region = 9000;  // metadata + tensor table, where corruption matters
    for (int k = 0; k < 3; ++k) bytes[(next() >> 33) % header_region] = static_cast<uint8_t>(next() >> 56);
    const auto path = dir.file("corrupt-" + std::to_string(trial) + ".gguf");
    testing::write_bytes(path, bytes);
    try {
      load_model(path.string());
    } catch (const FormatError&) {
      ++rejected;
    }
    std::filesystem::remove(path);
  }
  EXPECT_GT(rejected, 0u);
}

}  // namespace
}  // namespace prunekv
