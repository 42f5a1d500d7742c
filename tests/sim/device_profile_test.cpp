#include "sim/device_profile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace prunekv::sim {
namespace {

TEST(DeviceProfile, NamedProfilesCarryDataSheetFigures) {
  const DeviceProfile a100 = device_profile("A100-80GB");
  EXPECT_DOUBLE_EQ(a100.peak_flops, 312e12);
  EXPECT_DOUBLE_EQ(a100.memory_bandwidth, 2.039e12);
  EXPECT_EQ(a100.memory_bytes, 80'000'000'000ull);
  const DeviceProfile h100 = device_profile("h100");  // case-insensitive
  EXPECT_DOUBLE_EQ(h100.peak_flops, 989e12);
  EXPECT_DOUBLE_EQ(h100.memory_bandwidth, 3.35e12);
  const DeviceProfile h200 = device_profile("H200");
  EXPECT_DOUBLE_EQ(h200.memory_bandwidth, 4.8e12);
  EXPECT_EQ(h200.memory_bytes, 141'000'000'000ull);
}

TEST(DeviceProfile, UnknownNameListsTheKnownOnes) {
  try {
    device_profile("TPU-v9");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("TPU-v9"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("H100"), std::string::npos);
  }
}

TEST(DeviceProfile, ParsesJson) {
  const DeviceProfile profile = parse_device_profile_json(
      R"({"name": "box", "peak_flops": 1e12, "memory_bandwidth": 5e10, "memory_bytes": 1e9, "step_overhead_s": 0.001})",
      "box.json");
  EXPECT_EQ(profile.name, "box");
  EXPECT_DOUBLE_EQ(profile.peak_flops, 1e12);
  EXPECT_DOUBLE_EQ(profile.memory_bandwidth, 5e10);
  EXPECT_EQ(profile.memory_bytes, 1'000'000'000ull);
  EXPECT_DOUBLE_EQ(profile.step_overhead_s, 0.001);
  EXPECT_EQ(profile.weight_bytes_per_param, 2u);
}

TEST(DeviceProfile, ReadsAJsonFileByPath) {
  const auto path = std::filesystem::temp_directory_path() / "prunekv_device_profile_test.json";
  std::ofstream(path) << R"({"peak_flops": 2e12, "memory_bandwidth": 1e11, "memory_bytes": 4e9})";
  const DeviceProfile profile = device_profile(path.string());
  EXPECT_DOUBLE_EQ(profile.peak_flops, 2e12);
  EXPECT_EQ(profile.name, "prunekv_device_profile_test");
  std::filesystem::remove(path);
}

TEST(DeviceProfile, AttentionRateAndOverlapAreOptional) {
  const char* base = R"({"peak_flops": 1e12, "memory_bandwidth": 1e11, "memory_bytes": 1e9)";
  const DeviceProfile gpu = parse_device_profile_json(std::string(base) + "}", "x");
  EXPECT_TRUE(gpu.overlap);
  EXPECT_DOUBLE_EQ(gpu.attention_rate(), 1e12);  // unset: the peak
  const DeviceProfile cpu =
      parse_device_profile_json(std::string(base) + R"(, "attention_flops": 5e9, "overlap": false})", "x");
  EXPECT_FALSE(cpu.overlap);
  EXPECT_DOUBLE_EQ(cpu.attention_rate(), 5e9);
  EXPECT_THROW(parse_device_profile_json(std::string(base) + R"(, "overlap": 1})", "x"), FormatError);
  EXPECT_THROW(parse_device_profile_json(std::string(base) + R"(, "overlap": 1e400})", "x"), FormatError);
  EXPECT_THROW(parse_device_profile_json(std::string(base) + R"(, "attention_flops": -1})", "x"), ConfigError);
}

TEST(DeviceProfile, ZeroMemoryIsAConfigError) {
  EXPECT_THROW(parse_device_profile_json(R"({"peak_flops": 1e12, "memory_bandwidth": 1e11, "memory_bytes": 0})", "x"),
               ConfigError);
}

TEST(DeviceProfile, MissingOrMistypedFieldsNameTheField) {
  try {
    parse_device_profile_json(R"({"peak_flops": 1e12, "memory_bytes": 1e9})", "x.json");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("memory_bandwidth"), std::string::npos);
  }
  EXPECT_THROW(parse_device_profile_json(R"({"peak_flops": "fast", "memory_bandwidth": 1, "memory_bytes": 1})", "x"),
               FormatError);
  EXPECT_THROW(parse_device_profile_json("{not json", "x"), FormatError);
}

TEST(DeviceProfile, CpuCalibrationMeasuresPositiveFiniteRates) {
  const DeviceProfile cpu = calibrate_cpu_profile(0.02);
  EXPECT_EQ(cpu.name, "cpu");
  EXPECT_TRUE(std::isfinite(cpu.peak_flops) && cpu.peak_flops > 1e8) << cpu.peak_flops;
  EXPECT_TRUE(std::isfinite(cpu.memory_bandwidth) && cpu.memory_bandwidth > 1e8) << cpu.memory_bandwidth;
  EXPECT_GT(cpu.memory_bytes, 0u);
  EXPECT_EQ(cpu.weight_bytes_per_param, 4u);
}

}  // namespace
}  // namespace prunekv::sim
