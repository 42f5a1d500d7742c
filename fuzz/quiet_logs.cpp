// Linked into every fuzz target: prunekv's loggers off, so a bad input's warning is not printed
// thousands of times a second.
#include "common/log.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  prunekv::log::set_level("off");
  return 0;
}
