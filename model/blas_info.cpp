#include "model/blas_info.h"

#include <cblas.h>
#include <fmt/format.h>

namespace prunekv {

std::string blas_description() {
  const int parallel = openblas_get_parallel();  // 0 sequential, 1 pthreads, 2 OpenMP
  return fmt::format("{} ({}, {} thread(s))", openblas_get_config(),
                     parallel == 0 ? "serial" : parallel == 1 ? "pthreads" : "openmp", openblas_get_num_threads());
}

bool blas_is_serial() { return openblas_get_parallel() == 0; }

void blas_force_single_thread() {
  if (!blas_is_serial()) openblas_set_num_threads(1);
}

}  // namespace prunekv
