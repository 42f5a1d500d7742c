// The quantized weight products (model/quant_matmul.h) beside the F32 packed GEMM on the same
// shape, and the machine's read bandwidth: what batch-1 decode, which streams every weight byte
// once per token, is bounded by. bytes_per_second of BM_QuantMatmul counts weight bytes read
// (once per call), items = tokens.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "model/gemm.h"
#include "model/quant_matmul.h"

namespace prunekv {
namespace {

// Streams a buffer of 256 MiB per thread (far beyond the last-level cache) with 64-bit adds the
// compiler vectorises: bytes_per_second is the read bandwidth this many threads get.
void BM_ReadBandwidth(benchmark::State& state) {
  constexpr size_t kWords = (size_t{256} << 20) / sizeof(uint64_t);
  std::vector<uint64_t> buffer(kWords);
  for (size_t i = 0; i < kWords; ++i) buffer[i] = i * 0x9E3779B97F4A7C15ull;  // touch every page
  for (auto _ : state) {
    uint64_t sum = 0;
    for (size_t i = 0; i < kWords; ++i) sum += buffer[i];
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(int64_t(state.iterations() * kWords * sizeof(uint64_t)));
}
BENCHMARK(BM_ReadBandwidth)->Threads(1)->Threads(2)->UseRealTime()->Unit(benchmark::kMillisecond);

constexpr GgmlType kTypes[] = {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0,
                               GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0};

// Random weights of `type`: random bytes, every block's scales set to small positive halves.
std::vector<uint8_t> random_weights(GgmlType type, size_t rows, size_t cols) {
  const GgmlTypeTraits t = ggml_type_traits(type);
  std::vector<uint8_t> bytes(rows * ggml_row_bytes(type, cols));
  std::mt19937_64 rng(7);
  if (type == GgmlType::kF32) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (size_t i = 0; i < bytes.size(); i += 4) {
      const float v = dist(rng);
      std::memcpy(&bytes[i], &v, 4);
    }
    return bytes;
  }
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  const uint16_t scale = 0x2000;  // 2^-7
  auto put = [&](size_t at) { std::memcpy(&bytes[at], &scale, 2); };
  for (size_t at = 0; at < bytes.size(); at += t.block_bytes) {
    switch (type) {
      case GgmlType::kF16: case GgmlType::kBF16: put(at); break;  // keeps every value finite
      case GgmlType::kQ8_0: case GgmlType::kQ4_0: case GgmlType::kQ5_0: put(at); break;
      case GgmlType::kQ4_K: put(at); put(at + 2); break;
      case GgmlType::kQ6_K: put(at + 208); break;
      default: break;
    }
  }
  return bytes;
}

// Args: type index (kTypes), tokens n, in, out. One call of the product over all rows, serial.
void BM_QuantMatmul(benchmark::State& state) {
  const GgmlType type = kTypes[state.range(0)];
  const auto n = size_t(state.range(1)), in = size_t(state.range(2)), out = size_t(state.range(3));
  const auto bytes = random_weights(type, out, in);
  const QuantPart part{WeightView(type, bytes.data()), out};
  const QuantWeights w({&part, 1}, in);
  std::vector<float> x(n * in), y(n * out);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  const GemmOut o{y.data(), out};
  for (auto _ : state) {
    quant_matmul(w, x.data(), in, n, &o, 0, out);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations() * w.num_bytes()));
  state.SetItemsProcessed(int64_t(state.iterations() * n));
  state.SetLabel(std::string(ggml_type_name(type)) + " " + quant_kernel_isa());
}

// The F32 path of the same shape: weights packed once (as floats from GemmPart, as halves from
// GemmHalfPart: what F16 files run), the register-blocked GEMM.
template <typename Part>
void packed_gemm(benchmark::State& state) {
  using Element = std::remove_const_t<std::remove_pointer_t<decltype(Part::w)>>;
  const GgmlType type = sizeof(Element) == sizeof(float) ? GgmlType::kF32 : GgmlType::kF16;
  const auto n = size_t(state.range(0)), in = size_t(state.range(1)), out = size_t(state.range(2));
  const auto bytes = random_weights(type, out, in);
  const Part part{reinterpret_cast<const Element*>(bytes.data()), out};
  const PackedWeights w({&part, 1}, in);
  std::vector<float> x(n * in, 0.5f), y(n * out);
  const GemmOut o{y.data(), out};
  for (auto _ : state) {
    gemm_packed(w, x.data(), in, n, &o, 0, w.num_panels());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations() * in * out * sizeof(Element)));
  state.SetItemsProcessed(int64_t(state.iterations() * n));
}
void BM_PackedGemm(benchmark::State& state) { packed_gemm<GemmPart>(state); }
void BM_PackedGemmHalf(benchmark::State& state) { packed_gemm<GemmHalfPart>(state); }

// stories110M's w1 (2048 x 768) and w2 (768 x 2048) at decode batch sizes.
void quant_args(benchmark::internal::Benchmark* b) {
  for (int64_t type = 0; type < int64_t(std::size(kTypes)); ++type)
    for (int64_t n : {1, 4, 8, 16, 32, 64}) b->Args({type, n, 768, 2048});
  for (int64_t type : {3, 5}) b->Args({type, 32, 2048, 768});
}
BENCHMARK(BM_QuantMatmul)->Apply(quant_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PackedGemm)->Args({1, 768, 2048})->Args({16, 768, 2048})->Args({32, 768, 2048})->Args({64, 768, 2048})
    ->Args({32, 2048, 768})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PackedGemmHalf)->Args({1, 768, 2048})->Args({8, 768, 2048})->Args({16, 768, 2048})
    ->Args({32, 768, 2048})->Args({64, 768, 2048})->Args({32, 2048, 768})->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace prunekv
