#include <utility>

#include "scheduler/engine.h"

namespace prunekv {

std::vector<RequestOutput> generate(ModelRunner& runner, const EngineConfig& config, std::vector<RequestSpec> specs,
                                    EngineStats* stats) {
  Engine engine(runner, config);
  std::vector<RequestOutput> outputs = generate(engine, std::move(specs));
  if (stats != nullptr) *stats = engine.stats();
  return outputs;
}

std::vector<RequestOutput> generate(Engine& engine, std::vector<RequestSpec> specs) {
  std::vector<RequestOutput> outputs(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    // The callback runs on this thread inside step(); index i keeps input order.
    engine.submit(std::move(specs[i]), [&outputs, i](const RequestOutput& output, bool finished) {
      if (finished) outputs[i] = output;
    });
  }
  engine.run_until_idle();
  return outputs;
}

}  // namespace prunekv
