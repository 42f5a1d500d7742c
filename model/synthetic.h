#pragma once
// Seeded synthetic models with the exact shapes of real ones, for throughput work where the
// weight values do not matter. Weights live in one owned buffer.
#include <memory>
#include <string_view>

#include "model/model.h"

namespace prunekv::detail {

// `name` without the "synthetic:" prefix. Throws ConfigError for an unknown name.
std::unique_ptr<Model> make_synthetic_model(std::string_view name, const LoadOptions& options);

}  // namespace prunekv::detail
