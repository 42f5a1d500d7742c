#pragma once
// What the roofline cost model needs to know about an accelerator: peak compute, memory
// bandwidth, memory capacity and a fixed per-step overhead. GPUs come from their data sheets;
// `cpu` is measured on this machine (a short sgemm timing and a memory read sweep).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace prunekv {

struct DeviceProfile {
  std::string name;
  double peak_flops = 0.0;        // FLOP/s the weight GEMMs can reach (dense, at weight dtype)
  double memory_bandwidth = 0.0;  // bytes/s
  uint64_t memory_bytes = 0;      // capacity (weights + KV must fit)
  double step_overhead_s = 0.0;   // fixed cost per engine step (launches, scheduling, sampling)
  size_t weight_bytes_per_param = 2;  // bf16 on GPUs; 4 on the CPU engine (fp32 weights)

  // Throws ConfigError naming the field when a value is zero, negative or not finite.
  void validate() const;
};

// "A100-80GB", "H100", "H200", "cpu" (matched case-insensitively).
std::vector<std::string> device_profile_names();

// A named profile, or a JSON file {"name", "peak_flops", "memory_bandwidth", "memory_bytes",
// "step_overhead_s", "weight_bytes_per_param"} when `name_or_path` is an existing file.
// "cpu" runs calibrate_cpu_profile(). Throws ConfigError / FormatError.
DeviceProfile device_profile(std::string_view name_or_path);

// Parses the JSON form; `source` names it in errors.
DeviceProfile parse_device_profile_json(std::string_view json_text, const std::string& source);

// Measures this CPU: single-threaded OpenBLAS sgemm FLOP/s (~0.2 s, the engine's GEMM path) and
// a sequential read sweep for bandwidth (~0.1 s); memory_bytes is the machine's physical memory.
DeviceProfile calibrate_cpu_profile(double target_seconds = 0.2);

}  // namespace prunekv
