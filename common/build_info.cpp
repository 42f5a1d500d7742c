#include "common/build_info.h"

#ifndef PRUNEKV_VERSION
#define PRUNEKV_VERSION "unknown"
#endif
#ifndef PRUNEKV_BUILD_TYPE
#define PRUNEKV_BUILD_TYPE "unknown"
#endif

namespace prunekv {

const char* prunekv_version() { return PRUNEKV_VERSION; }
const char* build_type() { return PRUNEKV_BUILD_TYPE; }

}  // namespace prunekv
