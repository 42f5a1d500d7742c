#include "scheduler/request_state.h"

#include "policies/pruning_policy.h"

namespace prunekv::detail {

bool Request::prunes() const { return policy != nullptr && policy->prunes(); }

}  // namespace prunekv::detail
