#include "scheduler/model_runner.h"
