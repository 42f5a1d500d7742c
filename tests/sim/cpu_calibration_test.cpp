#include "sim/cpu_calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"

namespace prunekv::sim {
namespace {

// Samples made by a known machine: 2 ms per step, GEMMs at 40 GFLOP/s, attention at 8 GFLOP/s,
// 10 GB/s, with the step mixes the calibration times.
std::vector<CalibrationSample> samples_of(double overhead, double gemm, double attention, double bandwidth) {
  std::vector<CalibrationSample> out;
  for (double linear : {3e7, 1.2e8, 4.8e8, 1.5e9, 6e9})
    for (double attn : {2e5, 5e6, 9e7}) {
      const double bytes = 6e7 + attn / 10;
      out.push_back({linear, attn, bytes, overhead + linear / gemm + attn / attention + bytes / bandwidth});
    }
  return out;
}

TEST(CpuCalibration, FitRecoversTheRatesThatMadeTheSamples) {
  const DeviceProfile p = fit_cpu_profile(samples_of(2e-3, 40e9, 8e9, 10e9), 10e9);
  EXPECT_NEAR(p.peak_flops / 40e9, 1.0, 1e-6);
  EXPECT_NEAR(p.attention_flops / 8e9, 1.0, 1e-6);
  EXPECT_NEAR(p.step_overhead_s, 2e-3, 1e-9);
  EXPECT_DOUBLE_EQ(p.memory_bandwidth, 10e9);
  EXPECT_FALSE(p.overlap);
  EXPECT_EQ(p.weight_bytes_per_param, 4u);
  EXPECT_NO_THROW(p.validate());
}

TEST(CpuCalibration, NoiseThatWouldMakeTheOverheadNegativePinsItAtZero) {
  // Every step took less than the bandwidth alone explains: no room for an overhead.
  std::vector<CalibrationSample> samples = samples_of(0.0, 40e9, 8e9, 10e9);
  const DeviceProfile p = fit_cpu_profile(samples, 8e9);
  EXPECT_EQ(p.step_overhead_s, 0.0);  // least squares alone gives about -1.5 ms
  EXPECT_GT(p.peak_flops, 0.0);
  EXPECT_GT(p.attention_rate(), 0.0);
}

TEST(CpuCalibration, TimesTheRealForwardOfASmallModel) {
  const auto model = load_model("synthetic:stories260K");
  const CpuCalibration c = calibrate_cpu_for_model(*model, 1);
  EXPECT_EQ(c.samples.size(), 8u);  // 3 prefills + 5 decode medians
  for (const CalibrationSample& s : c.samples) {
    EXPECT_GT(s.seconds, 0.0);
    EXPECT_GT(s.linear_flops, 0.0);
  }
  EXPECT_NO_THROW(c.profile.validate());
  EXPECT_FALSE(c.profile.overlap);
  EXPECT_TRUE(std::isfinite(c.max_relative_error));
}

TEST(CpuCalibration, TooFewSamplesIsAConfigError) {
  EXPECT_THROW(fit_cpu_profile({{1e9, 1e6, 1e7, 0.1}}, 1e10), ConfigError);
}

}  // namespace
}  // namespace prunekv::sim
