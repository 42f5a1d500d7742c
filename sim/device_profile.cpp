#include "sim/device_profile.h"

#include <cblas.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <vector>

#include "common/error.h"
#include "common/large_buffer.h"
#include "common/log.h"
#include "common/text.h"
#include "common/stopwatch.h"

namespace prunekv::sim {
namespace {

constexpr uint64_t kGB = 1000ull * 1000 * 1000;
constexpr uint64_t kGiB = 1024ull * 1024 * 1024;

// Data-sheet figures: dense BF16 tensor-core peak (no sparsity) and HBM bandwidth.
// A100 80GB SXM: 312 TFLOP/s, 2,039 GB/s, 80 GB. H100 SXM: 989 TFLOP/s, 3.35 TB/s, 80 GB.
// H200 SXM: 989 TFLOP/s, 4.8 TB/s, 141 GB. The per-step overhead (kernel launches, scheduling,
// sampling) is not on any data sheet: 2 ms is the order vLLM's V1 engine shows per step.
// Capacities are decimal GB as NVIDIA states them (80 GB is 80e9 bytes, ~74.5 GiB).
const std::vector<DeviceProfile>& named_profiles() {
  static const std::vector<DeviceProfile> profiles = {
      {"A100-80GB", 312e12, 2.039e12, 80 * kGB, 2e-3, 2},
      {"H100", 989e12, 3.35e12, 80 * kGB, 2e-3, 2},
      {"H200", 989e12, 4.8e12, 141 * kGB, 2e-3, 2},
  };
  return profiles;
}

double measure_sgemm_flops(double seconds) {
  // The engine's GEMM shape: activations [n][in] times weights [out][in]^T (RowMajor, NoTrans,
  // Trans), with a token count typical of a mixed step.
  constexpr int n = 128, in = 1024, out = 1024;
  std::vector<float> x(size_t{n} * in, 0.5f), w(size_t{out} * in, 0.25f), y(size_t{n} * out);
  auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x.data(), in, w.data(), in, 0.0f,
                y.data(), out);
  };
  run();  // warm up: pages, caches, OpenBLAS's buffers
  size_t calls = 0;
  Stopwatch watch;
  do {
    run();
    ++calls;
  } while (watch.seconds() < seconds);
  return 2.0 * n * in * out * double(calls) / watch.seconds();
}

}  // namespace

void DeviceProfile::validate() const {
  auto bad = [&](const char* field, double value) {
    throw ConfigError(fmt::format("device profile '{}': {} = {}, expected a positive finite number", name, field, value));
  };
  if (!(peak_flops > 0) || !std::isfinite(peak_flops)) bad("peak_flops", peak_flops);
  if (!(memory_bandwidth > 0) || !std::isfinite(memory_bandwidth)) bad("memory_bandwidth", memory_bandwidth);
  if (memory_bytes == 0) bad("memory_bytes", 0);
  if (!(step_overhead_s >= 0) || !std::isfinite(step_overhead_s))
    throw ConfigError(fmt::format("device profile '{}': step_overhead_s = {}, expected >= 0", name, step_overhead_s));
  if (!(attention_flops >= 0) || !std::isfinite(attention_flops))
    throw ConfigError(fmt::format("device profile '{}': attention_flops = {}, expected >= 0 (0: peak_flops)", name,
                                  attention_flops));
  if (weight_bytes_per_param == 0 || weight_bytes_per_param > 8)
    throw ConfigError(fmt::format("device profile '{}': weight_bytes_per_param = {}, expected 1..8", name,
                                  weight_bytes_per_param));
}

std::vector<std::string> device_profile_names() {
  std::vector<std::string> names;
  for (const auto& profile : named_profiles()) names.push_back(profile.name);
  names.emplace_back("cpu");
  return names;
}

DeviceProfile parse_device_profile_json(std::string_view json_text, const std::string& source) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw FormatError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  if (!json.is_object()) throw FormatError(fmt::format("{}: expected a JSON object, found {}", source, json.type_name()));
  auto number = [&](const char* key, bool required, double fallback) -> double {
    if (!json.contains(key)) {
      if (required) throw FormatError(fmt::format("{}: field '{}' missing, expected a number", source, key));
      return fallback;
    }
    if (!json[key].is_number())
      throw FormatError(fmt::format("{}: field '{}' is {}, expected a number", source, key, json[key].type_name()));
    return json[key].get<double>();
  };
  DeviceProfile profile;
  profile.name = json.contains("name") && json["name"].is_string() ? json["name"].get<std::string>()
                                                                    : std::filesystem::path(source).stem().string();
  profile.peak_flops = number("peak_flops", true, 0);
  profile.memory_bandwidth = number("memory_bandwidth", true, 0);
  const double memory = number("memory_bytes", true, 0);
  profile.memory_bytes = memory > 0 ? static_cast<uint64_t>(memory) : 0;
  profile.step_overhead_s = number("step_overhead_s", false, 0.0);
  const double weight_bytes = number("weight_bytes_per_param", false, 2.0);
  profile.weight_bytes_per_param = weight_bytes > 0 ? static_cast<size_t>(weight_bytes) : 0;
  profile.attention_flops = number("attention_flops", false, 0.0);
  if (json.contains("overlap")) {
    if (!json["overlap"].is_boolean())
      throw FormatError(fmt::format("{}: field 'overlap' is {}, expected true or false", source, json["overlap"].type_name()));
    profile.overlap = json["overlap"].get<bool>();
  }
  profile.validate();
  return profile;
}

double measure_read_bandwidth(double seconds) {
  // 64 MiB: far beyond the last-level cache, so every pass streams from DRAM.
  std::vector<float> buffer(size_t{16} << 20, 1.0f);
  volatile float sink = 0.0f;
  size_t passes = 0;
  sink = sink + std::accumulate(buffer.begin(), buffer.end(), 0.0f);  // warm up (fault pages)
  Stopwatch watch;
  do {
    // Four independent partial sums let the compiler vectorise and keep loads in flight.
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 3 < buffer.size(); i += 4) {
      s0 += buffer[i];
      s1 += buffer[i + 1];
      s2 += buffer[i + 2];
      s3 += buffer[i + 3];
    }
    sink = sink + s0 + s1 + s2 + s3;
    ++passes;
  } while (watch.seconds() < seconds);
  return double(buffer.size() * sizeof(float)) * double(passes) / watch.seconds();
}

DeviceProfile calibrate_cpu_profile(double target_seconds) {
  DeviceProfile profile;
  profile.name = "cpu";
  profile.peak_flops = measure_sgemm_flops(target_seconds);
  profile.memory_bandwidth = measure_read_bandwidth(target_seconds / 2);
  profile.memory_bytes = physical_memory_bytes();
  // The CPU engine's per-step bookkeeping (scheduling, TBB dispatch, sampling) is small next to
  // its GEMMs; the JSON form lets a measured value replace this guess.
  profile.step_overhead_s = 100e-6;
  profile.weight_bytes_per_param = 4;  // prunekv computes with fp32 weights
  profile.overlap = false;             // the engine's GEMMs stream weights inside compute loops
  log::get("sim")->info("calibrated cpu: sgemm {:.1f} GFLOP/s, read bandwidth {:.1f} GB/s, memory {:.1f} GiB",
                        profile.peak_flops / 1e9, profile.memory_bandwidth / 1e9,
                        double(profile.memory_bytes) / double(kGiB));
  profile.validate();
  return profile;
}

DeviceProfile device_profile(std::string_view name_or_path) {
  const std::string wanted = to_lower_ascii(name_or_path);
  for (const auto& profile : named_profiles())
    if (to_lower_ascii(profile.name) == wanted) return profile;
  if (wanted == "cpu") return calibrate_cpu_profile();
  const std::string path(name_or_path);
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    std::ifstream in(path);
    if (!in) throw FormatError(fmt::format("{}: cannot open device profile", path));
    std::stringstream text;
    text << in.rdbuf();
    return parse_device_profile_json(text.str(), path);
  }
  throw ConfigError(fmt::format("device '{}': expected one of {} or a JSON profile file", name_or_path,
                                fmt::join(device_profile_names(), ", ")));
}

}  // namespace prunekv::sim
