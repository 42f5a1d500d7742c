// `full`: the baseline. Records nothing and prunes nothing, so a request served with it runs
// exactly as with no policy at all.
#include "policies/policy_factories.h"

namespace prunekv::detail {
namespace {

class FullPolicy final : public PruningPolicy {
 public:
  std::string name() const override { return "full"; }
  bool prunes() const override { return false; }
  PrunePlan select(const PruneView& /*view*/) const override { return {}; }
};

}  // namespace

std::unique_ptr<PruningPolicy> make_full_policy() { return std::make_unique<FullPolicy>(); }

}  // namespace prunekv::detail
