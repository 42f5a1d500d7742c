#include "tests/testing/model_paths.h"
