#pragma once
// Libraries log through named loggers; only applications configure sinks and levels.
#include <spdlog/spdlog.h>

#include <string_view>

namespace prunekv::log {

// One of "memory", "model", "policy", "sched", "cli", "bench", "sim". Created on first use with
// a stderr sink; never logs to stdout.
std::shared_ptr<spdlog::logger> get(const std::string& name);

// For apps: sets the level of every prunekv logger ("trace".."off"); throws ConfigError on an
// unknown name.
void set_level(std::string_view level);

}  // namespace prunekv::log
