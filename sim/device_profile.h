#pragma once
// What the roofline cost model needs to know about an accelerator: peak compute, memory
// bandwidth, memory capacity and a fixed per-step overhead. GPUs come from their data sheets;
// `cpu` is measured on this machine (a short sgemm timing and a memory read sweep).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace prunekv::sim {

struct DeviceProfile {
  std::string name;
  double peak_flops = 0.0;        // FLOP/s the weight GEMMs can reach (dense, at weight dtype)
  double memory_bandwidth = 0.0;  // bytes/s
  uint64_t memory_bytes = 0;      // capacity (weights + KV must fit)
  double step_overhead_s = 0.0;   // fixed cost per engine step (launches, scheduling, sampling)
  size_t weight_bytes_per_param = 2;  // bf16 on GPUs; 4 on the CPU engine (fp32 weights)
  // FLOP/s attention reaches; 0 means peak_flops (fused GPU attention kernels come close to it,
  // the CPU engine's paged attention does not).
  double attention_flops = 0.0;
  // Whether memory traffic hides under compute (a GPU: max(compute, memory)) or adds to it (the
  // CPU engine streams each weight panel inside its GEMM loop: compute + memory).
  bool overlap = true;

  double attention_rate() const { return attention_flops > 0 ? attention_flops : peak_flops; }

  // Throws ConfigError naming the field when a value is zero, negative or not finite.
  void validate() const;
};

// "A100-80GB", "H100", "H200", "cpu" (matched case-insensitively).
std::vector<std::string> device_profile_names();

// A named profile, or a JSON file {"name", "peak_flops", "memory_bandwidth", "memory_bytes",
// "step_overhead_s", "weight_bytes_per_param", "attention_flops", "overlap"} when `name_or_path`
// is an existing file (the last four optional).
// "cpu" runs calibrate_cpu_profile(). Throws ConfigError / FormatError.
DeviceProfile device_profile(std::string_view name_or_path);

// Parses the JSON form; `source` names it in errors.
DeviceProfile parse_device_profile_json(std::string_view json_text, const std::string& source);

// Measures this CPU without a model: single-threaded OpenBLAS sgemm FLOP/s (~0.2 s) and a
// sequential read sweep for bandwidth (~0.1 s); memory_bytes is the machine's physical memory.
// An upper bound on what the engine reaches; calibrate_cpu_for_model (model/cpu_calibration.h)
// times the engine itself.
DeviceProfile calibrate_cpu_profile(double target_seconds = 0.2);
// The read sweep alone: bytes/s streamed from DRAM.
double measure_read_bandwidth(double seconds);

}  // namespace prunekv::sim
