// Logger set-up: one "cosmos" logger whose single sink forwards to stderr or
// a reopenable file; text or JSON lines, UTC timestamps with a Z marker.
#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

namespace cosmos::log {
namespace {

constexpr const char* kTextPattern = "[%Y-%m-%dT%H:%M:%S.%eZ] [%l] %v";
constexpr const char* kJsonPattern =
    R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","pid":%P,"msg":"%*"})";

// %* in the JSON pattern: the message, escaped as a JSON string body.
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(c);
      } else if (c == '\n') {
        dest.append(std::string_view("\\n"));
      } else if (c == '\t') {
        dest.append(std::string_view("\\t"));
      } else if (u < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", u);
        dest.append(std::string_view(buf));
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

std::unique_ptr<spdlog::formatter> MakeFormatter(std::string_view format) {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  f->add_flag<JsonEscapedMessage>('*');
  f->set_pattern(format == "json" ? kJsonPattern : kTextPattern);
  return f;
}

// The logger's one sink: forwards to a target sink (stderr or a file) that
// Configure and Reopen replace under the sink's mutex.
class SwitchableSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  SwitchableSink() : target_(std::make_unique<spdlog::sinks::stderr_color_sink_st>()) {
    target_->set_formatter(MakeFormatter(format_));
  }

  // Opens `file` (empty: stderr) with `format`; the old target stays on error.
  Status Switch(const std::string& file, const std::string& format) {
    std::unique_ptr<spdlog::sinks::sink> next;
    if (file.empty()) {
      next = std::make_unique<spdlog::sinks::stderr_color_sink_st>();
    } else {
      // spdlog reports open failures by exception; COSMOS code returns them.
      try {
        next = std::make_unique<spdlog::sinks::basic_file_sink_st>(file, /*truncate=*/false);
      } catch (const spdlog::spdlog_ex& e) {
        return Status::IoError("log file " + file + ": " + e.what());
      }
    }
    next->set_formatter(MakeFormatter(format));
    std::lock_guard<std::mutex> lock(mutex_);
    target_->flush();
    target_ = std::move(next);
    file_ = file;
    format_ = format;
    return Status::Ok();
  }

  Status Reopen() {
    std::string file, format;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      file = file_;
      format = format_;
    }
    if (file.empty()) return Status::Ok();
    return Switch(file, format);
  }

  std::string file() {
    std::lock_guard<std::mutex> lock(mutex_);
    return file_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override { target_->log(msg); }
  void flush_() override { target_->flush(); }
  // The formats are fixed (text or JSON); a pattern set through spdlog's
  // API is ignored rather than half-applied.
  void set_pattern_(const std::string&) override {}
  void set_formatter_(std::unique_ptr<spdlog::formatter>) override {}

 private:
  std::unique_ptr<spdlog::sinks::sink> target_;
  std::string file_;
  std::string format_ = "text";
};

std::shared_ptr<SwitchableSink>& TheSink() {
  static auto* sink = new std::shared_ptr<SwitchableSink>();  // never destroyed: used at exit
  return *sink;
}

}  // namespace

Status ValidateLevel(std::string_view name) {
  for (std::string_view known : {"trace", "debug", "info", "warn", "error", "off"}) {
    if (name == known) return Status::Ok();
  }
  return Status::InvalidArgument("unknown log level '" + std::string(name) + "' (expected " +
                                 std::string(kLevelNames) + ")");
}

Status ValidateFormat(std::string_view name) {
  if (name == "text" || name == "json") return Status::Ok();
  return Status::InvalidArgument("unknown log format '" + std::string(name) +
                                 "' (expected text or json)");
}

bool SetLevel(std::string_view name) {
  if (!ValidateLevel(name).ok()) return false;
  spdlog::set_level(spdlog::level::from_str(std::string(name)));
  return true;
}

std::string LevelName() {
  const auto name = spdlog::level::to_string_view(spdlog::get_level());
  return name == "warning" ? "warn" : std::string(name.data(), name.size());
}

void Init(std::string_view default_level) {
  static std::once_flag once;
  std::call_once(once, [&] {
    TheSink() = std::make_shared<SwitchableSink>();
    auto logger = std::make_shared<spdlog::logger>("cosmos", TheSink());
    logger->flush_on(spdlog::level::trace);  // a line is in the file once logged
    spdlog::set_default_logger(logger);
    const char* env = std::getenv("COSMOS_LOG_LEVEL");
    if (env == nullptr || !SetLevel(env)) SetLevel(default_level);
  });
}

Status Configure(const Options& options) {
  Init();
  if (!options.level.empty()) COSMOS_RETURN_IF_ERROR(ValidateLevel(options.level));
  COSMOS_RETURN_IF_ERROR(ValidateFormat(options.format));
  COSMOS_RETURN_IF_ERROR(TheSink()->Switch(options.file, options.format));
  if (!options.level.empty()) SetLevel(options.level);
  return Status::Ok();
}

Status Reopen() {
  Init();
  return TheSink()->Reopen();
}

std::string CurrentFile() {
  Init();
  return TheSink()->file();
}

}  // namespace cosmos::log
