#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

#include "common/error.h"

namespace prunekv::log {
namespace {
std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;
}  // namespace

std::shared_ptr<spdlog::logger> get(const std::string& name) {
  std::lock_guard lock(g_mutex);
  if (auto logger = spdlog::get(name)) return logger;
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_level(g_level);
  logger->set_pattern("[%H:%M:%S.%e] [%n] [%^%l%$] %v");
  return logger;
}

void set_level(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off")
    throw ConfigError(fmt::format("unknown log level '{}': expected trace, debug, info, warn, error, critical or off", level));
  std::lock_guard lock(g_mutex);
  g_level = parsed;
  spdlog::set_level(parsed);
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) { l->set_level(parsed); });
}

}  // namespace prunekv::log
