#pragma once
// A pruning policy for the simulator: it needs no attention statistics (the simulated forward
// computes none) and keeps a given fraction of a request's prompt KV, with the memory shape of
// the real policy it stands in for. Spec: "sim:NAME:KEEP", e.g. "sim:dbudget:0.6368" or
// "sim:snapkv:0.5"; the workload draws KEEP per request.
//
// The plan is dbudget's: the first `protected_layers` layers stay whole (2 for dbudget, 0 for
// fixed-budget policies), the 4 sink tokens stay, and every other layer evicts one contiguous
// range after the sinks, sized so that kept (layer, KV head, prompt position) entries over all
// entries is KEEP, with the cut rounded to the nearest whole block (block_rounded = true, so
// drop_range frees blocks without data movement). The reported kept fraction (PruneOutcome) is
// what the rounding actually left. name() is NAME, so the engine's forecast pools every
// request of one policy.
#include <memory>
#include <string>
#include <string_view>

#include "policies/pruning_policy.h"
#include "scheduler/engine_config.h"

namespace prunekv::sim {

class SimulatedPolicy : public PruningPolicy {
 public:
  SimulatedPolicy(std::string name, double keep_fraction, uint32_t protected_layers);
  std::string name() const override { return name_; }
  PrunePlan select(const PruneView& view) const override;
  double keep_fraction() const { return keep_fraction_; }

 private:
  std::string name_;
  double keep_fraction_;
  uint32_t protected_layers_;
};

// "sim:NAME:KEEP" for a simulated policy (NAME dbudget* protects layers 0-1), anything else
// through make_pruning_policy (`full`). Throws ConfigError on a bad spec.
std::unique_ptr<PruningPolicy> make_simulated_policy(std::string_view spec);
// The spec a request of `policy` ("dbudget", "snapkv:0.5") gets for a drawn kept fraction;
// "full" stays "full". Fixed-budget policies keep their own ratio whatever was drawn.
std::string simulated_policy_spec(std::string_view policy, double drawn_keep_fraction);
// A PolicyFactory for EngineConfig::policy_factory.
PolicyFactory simulated_policy_factory();

}  // namespace prunekv::sim
