// Logging for COSMOS: thin macros over spdlog so every binary logs the same
// way, to stderr or a file, as text ("[2026-12-01T10:00:00.123Z] [info]
// message", UTC) or JSON lines for log shippers; tests can silence it.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "cosmos/status.h"

namespace cosmos::log {

// The level names every binary accepts, for help texts and errors.
inline constexpr std::string_view kLevelNames = "trace, debug, info, warn, error or off";

// Ok if `name` is one of trace, debug, info, warn, error, off; otherwise
// InvalidArgument "unknown log level 'NAME' (expected trace, debug, ...)" —
// the one message every binary prints. Thread-safe.
[[nodiscard]] Status ValidateLevel(std::string_view name);

// Ok for "text" or "json"; otherwise InvalidArgument naming the format.
[[nodiscard]] Status ValidateFormat(std::string_view name);

// Sets the global level from a name (see ValidateLevel). Returns false
// (level unchanged) for an unknown name. Thread-safe.
bool SetLevel(std::string_view name);

// The current global level's name ("info", ...). Thread-safe.
std::string LevelName();

// Installs the COSMOS logger (text to stderr, UTC timestamps) as spdlog's
// default. Level: COSMOS_LOG_LEVEL if set and valid, else `default_level`.
// Idempotent; called first by every app main. Thread-safe after the first
// call returns.
void Init(std::string_view default_level = "info");

// Where and how to log; every field validated by Configure.
struct Options {
  std::string level;            // empty: keep the current level
  std::string file;             // empty: stderr; else appended to (created if missing)
  std::string format = "text";  // text | json (one JSON object per line)
};

// Applies `options` to the logger installed by Init (calls Init if needed).
// Errors, with nothing changed: InvalidArgument for a bad level or format,
// IoError (naming the path) if the file cannot be opened. Thread-safe with
// concurrent logging: a message goes wholly to the old or the new sink.
[[nodiscard]] Status Configure(const Options& options);

// Closes and reopens the log file (after logrotate moved it); Ok and no-op
// when logging to stderr. On IoError the old file stays in use. Thread-safe.
[[nodiscard]] Status Reopen();

// The log file in use; empty when logging to stderr. Thread-safe.
std::string CurrentFile();

}  // namespace cosmos::log

#define COSMOS_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define COSMOS_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define COSMOS_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define COSMOS_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define COSMOS_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
