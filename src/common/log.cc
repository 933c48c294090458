// Logger set-up: one stderr logger with a stable pattern; level from
// COSMOS_LOG_LEVEL if set.
#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <mutex>
#include <string>

namespace cosmos::log {

bool SetLevel(std::string_view name) {
  auto level = spdlog::level::from_str(std::string(name));
  if (level == spdlog::level::off && name != "off") return false;
  spdlog::set_level(level);
  return true;
}

void Init(std::string_view default_level) {
  static std::once_flag once;
  std::call_once(once, [&] {
    auto logger = spdlog::stderr_color_mt("cosmos");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
    const char* env = std::getenv("COSMOS_LOG_LEVEL");
    if (env == nullptr || !SetLevel(env)) SetLevel(default_level);
  });
}

}  // namespace cosmos::log
