#include "model/quant_kernels.h"

namespace prunekv::detail {

std::vector<const QuantKernels*> supported_quant_kernels() {
  __builtin_cpu_init();
  std::vector<const QuantKernels*> tables;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (avx2) tables.push_back(quant_kernels_avx2());
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (avx512) tables.push_back(quant_kernels_avx512());
  if (avx512 && __builtin_cpu_supports("avx512vnni")) tables.push_back(quant_kernels_avx512vnni());
  return tables;
}

}  // namespace prunekv::detail
