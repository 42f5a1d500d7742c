// Our dequantizers against llama.cpp's own, on tensors llama.cpp's `llama-quantize` made: for a
// quantized file Q and the F32 file llama-quantize writes from it (`llama-quantize
// --allow-requantize Q D F32`, which decodes every tensor with ggml's to_float), every tensor of
// Q decoded by the scalar reference (model/dequantize.h) and by every vector kernel this CPU runs
// must give D's values bit for bit.
//
// The files are made from the seeded synthetic checkpoints of ../shared/peers/llama.cpp/models
// (and stories260K) and are too large to commit, so the test looks for them in
// $PRUNEKV_LLAMA_MODELS, else in the folder that script writes to
// (${XDG_CACHE_HOME:-$HOME/.cache}/prunekv-peers/llama.cpp-3f545bec/models), and skips, naming
// the file and the commands that make it, when one is absent. Which pairs: see kPairs.
#include <gtest/gtest.h>

#include <bit>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/dequantize.h"
#include "model/gguf_reader.h"
#include "model/mapped_file.h"
#include "model/quant_kernels.h"

namespace prunekv {
namespace {

std::filesystem::path llama_models_dir() {
  if (const char* dir = std::getenv("PRUNEKV_LLAMA_MODELS")) return dir;
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path base = cache ? std::filesystem::path(cache)
                                           : std::filesystem::path(home ? home : ".") / ".cache";
  return base / "prunekv-peers" / "llama.cpp-3f545bec" / "models";
}

struct Pair {
  const char* quantized;  // made by llama-quantize from <model>-f32.gguf
  const char* type;       // llama-quantize's type argument
  std::vector<GgmlType> must_have;  // tensor types the file is known to hold
};

// Each Q: `llama-quantize <model>-f32.gguf Q <type>`; its D: `llama-quantize --allow-requantize Q
// <Q without .gguf>.dequant-f32.gguf F32`. stories260K-f32.gguf is ../shared/models'; synth*-f32
// come from ../shared/peers/llama.cpp/models. Q4_K_M mixes Q4_K and Q6_K, with Q5_0 and Q8_0
// where a row is not whole 256-value blocks (stories15M's 288, stories42M's 1376).
const Pair kPairs[] = {
    {"stories260K-f16.gguf", "F16", {GgmlType::kF16}},
    {"stories260K-bf16.gguf", "BF16", {GgmlType::kBF16}},
    {"stories260K-q8_0.gguf", "Q8_0", {GgmlType::kQ8_0}},
    {"stories260K-q4_0.gguf", "Q4_0", {GgmlType::kQ4_0}},
    {"synth15M-q8_0.gguf", "Q8_0", {GgmlType::kQ8_0}},
    {"synth15M-q4_k_m.gguf", "Q4_K_M", {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0}},
    {"synth42M-q4_k_m.gguf", "Q4_K_M", {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0}},
    {"synth110M-q4_k_m.gguf", "Q4_K_M", {GgmlType::kQ4_K, GgmlType::kQ6_K}},
};

class LlamaQuantizeDequantization : public ::testing::TestWithParam<Pair> {};

TEST_P(LlamaQuantizeDequantization, EveryTensorBitIdenticalToGgmlToFloat) {
  const Pair& pair = GetParam();
  const std::filesystem::path dir = llama_models_dir();
  const std::filesystem::path q_path = dir / pair.quantized;
  const std::filesystem::path d_path = dir / (q_path.stem().string() + ".dequant-f32.gguf");
  for (const auto& p : {q_path, d_path})
    if (!std::filesystem::exists(p))
      GTEST_SKIP() << "missing " << p << ": made from llama.cpp's tools (../shared/peers/llama.cpp/README.md) by "
                   << "`llama-quantize <model>-f32.gguf " << q_path.filename().string() << " " << pair.type
                   << "` and `llama-quantize --allow-requantize " << q_path.filename().string() << " "
                   << d_path.filename().string() << " F32` in " << dir << " (or $PRUNEKV_LLAMA_MODELS)";
  const GgufReader q(MappedFile::open(q_path.string()));
  const GgufReader d(MappedFile::open(d_path.string()));

  const auto tables = detail::supported_quant_kernels();
  std::map<GgmlType, size_t> checked;  // tensors per type
  std::vector<float> ours, vectorised;
  for (const GgufTensorInfo& t : q.tensors()) {
    if (t.type == GgmlType::kF32) continue;
    ASSERT_TRUE(is_supported_weight_type(t.type)) << t.name << " " << ggml_type_name(t.type);
    const GgufTensorInfo* expected = d.find_tensor(t.name);
    ASSERT_NE(expected, nullptr) << t.name;
    ASSERT_EQ(expected->type, GgmlType::kF32) << t.name;
    ASSERT_EQ(expected->num_elements(), t.num_elements()) << t.name;
    const size_t cols = t.shape[0], rows = t.num_elements() / cols, row_bytes = ggml_row_bytes(t.type, cols);
    ASSERT_EQ(rows * row_bytes, t.num_bytes) << t.name;
    const auto* want = reinterpret_cast<const uint32_t*>(expected->data);
    ours.resize(rows * cols);
    for (size_t r = 0; r < rows; ++r) dequantize_row(t.type, t.data + r * row_bytes, ours.data() + r * cols, cols);
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < ours.size(); ++i)
      if (std::bit_cast<uint32_t>(ours[i]) != want[i] && mismatches++ == 0) first = i;
    EXPECT_EQ(mismatches, 0u) << t.name << " (" << ggml_type_name(t.type) << "): element " << first << " is "
                              << ours[first] << ", ggml's " << std::bit_cast<float>(want[first]);
    for (const detail::QuantKernels* kernels : tables) {
      vectorised.assign(rows * cols, -1.0f);
      kernels->dequantize_rows(t.type, t.data, row_bytes, cols, rows, vectorised.data());
      EXPECT_EQ(std::memcmp(vectorised.data(), want, rows * cols * sizeof(float)), 0)
          << t.name << " (" << ggml_type_name(t.type) << ") by the " << kernels->isa << " kernels";
    }
    ++checked[t.type];
  }
  std::string summary;
  for (const auto& [type, n] : checked) {  // appended piecewise: GCC 12 -Wrestrict misfires on " " + string&&
    summary += ' ';
    summary += ggml_type_name(type);
    summary += ':';
    summary += std::to_string(n);
  }
  std::printf("%s: tensors bit-identical to ggml's dequantization (%zu vector kernel tables):%s\n", pair.quantized,
              tables.size(), summary.c_str());
  for (GgmlType type : pair.must_have) EXPECT_GT(checked[type], 0u) << "no " << ggml_type_name(type) << " tensor";
}

INSTANTIATE_TEST_SUITE_P(Files, LlamaQuantizeDequantization, ::testing::ValuesIn(kPairs), [](const auto& info) {
  std::string name = std::filesystem::path(info.param.quantized).stem().string();
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
});

}  // namespace
}  // namespace prunekv
