#include "policies/pruning_policy.h"
