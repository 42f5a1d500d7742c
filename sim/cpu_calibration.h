#pragma once
// Calibrates the simulator's `cpu` device profile by timing this engine's own forward pass, so
// the simulated step times are what prunekv reaches here, not what a tuned sgemm could. A short
// run (about 1,000 prefill tokens and two dozen decode steps) times steps of different mixes and
// fits the cost model's free parameters by least squares:
//   seconds - memory_bytes / bandwidth = overhead + linear_flops / F + attention_flops / A
// with the bandwidth from a read sweep; F, A and the overhead go into a profile with
// overlap = false (the CPU engine streams weights inside its compute loops).
#include <vector>

#include "sim/cost_model.h"
#include "sim/device_profile.h"
#include "model/model.h"

namespace prunekv::sim {

// One timed step: its cost-model terms (at unit rates) and the measured seconds.
struct CalibrationSample {
  double linear_flops = 0;
  double attention_flops = 0;
  double memory_bytes = 0;
  double seconds = 0;
};

struct CpuCalibration {
  DeviceProfile profile;
  std::vector<CalibrationSample> samples;
  double max_relative_error = 0;  // of the fitted profile over the samples
};

// Times `model` with `num_threads` workers. Needs a model whose context holds 170 tokens.
CpuCalibration calibrate_cpu_for_model(const Model& model, int num_threads);

// The fit alone: overhead, F and A from samples with a known bandwidth. Coefficients the data
// would make negative (noise) are pinned (overhead 0, attention at F) and the rest refitted.
DeviceProfile fit_cpu_profile(const std::vector<CalibrationSample>& samples, double memory_bandwidth);

}  // namespace prunekv::sim
