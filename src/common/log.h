// Logging for COSMOS: thin macros over spdlog so every binary logs the same way
// ("[time] [level] [component] message") and tests can silence it.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace cosmos::log {

// Sets the global level from a name: trace, debug, info, warn, error, off.
// Returns false (level unchanged) for an unknown name.
bool SetLevel(std::string_view name);

// Installs the COSMOS pattern on the default stderr logger. Idempotent;
// called by every app main. Thread-safe after the first call returns.
void Init(std::string_view default_level = "info");

}  // namespace cosmos::log

#define COSMOS_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define COSMOS_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define COSMOS_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define COSMOS_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define COSMOS_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
