#pragma once
#include <string>

namespace prunekv {

// Which OpenBLAS is loaded at run time ("OpenBLAS 0.3.21 ... serial"), and whether it runs its
// own threads (the pthread flavour would oversubscribe the TBB arena).
std::string blas_description();
bool blas_is_serial();
// Pins OpenBLAS to one thread when a threaded flavour was loaded anyway.
void blas_force_single_thread();

}  // namespace prunekv
