// Shared flag definitions and the parse step with COSMOS's exit codes.
#include "app_flags.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <vector>

#include "common/build_info.h"
#include "common/edit_distance.h"
#include "common/size.h"

namespace cosmos::app {

void AddVersionFlag(CLI::App& app, std::string_view program) {
  app.name(std::string(program));
  app.set_version_flag("--version", VersionLine(program),
                       "Print the version, git commit and build type, then exit");
}

void AddLogFlags(CLI::App& app, LogFlags& flags, std::string_view default_level) {
  app.add_option("--log-level", flags.level,
                 std::string(log::kLevelNames) + " (default " + std::string(default_level) + ")")
      ->check(CLI::Validator(
          [](std::string& v) {
            Status s = log::ValidateLevel(v);
            return s.ok() ? std::string() : s.message();
          },
          // The choices in CLI11's {a,b} form: help shows them and
          // `cosmos completion` offers them.
          "{trace,debug,info,warn,error,off}"));
  app.add_option("--log-file", flags.file,
                 "Append log lines to this file instead of stderr (reopened on SIGHUP for "
                 "log rotation)");
  app.add_option("--log-format", flags.format,
                 "text (\"[time] [level] message\", UTC) or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

CLI::Validator SizeValidator() {
  return CLI::Validator(
      [](std::string& v) {
        auto size = ParseSize(v);
        return size.ok() ? std::string() : size.status().message();
      },
      "SIZE");
}

CLI::Validator ByteCount(uint64_t max) {
  return CLI::Validator(
      [max](std::string& v) {
        auto bytes = ParseSize(v);
        if (!bytes.ok()) return bytes.status().message();
        if (*bytes > max) {
          return "'" + v + "' is too large (at most " + FormatSize(max) + " = " +
                 std::to_string(max) + " bytes)";
        }
        v = std::to_string(*bytes);
        return std::string();
      },
      "BYTES");
}

CLI::Validator NonNegativeInteger(uint64_t max) {
  return CLI::Validator(
      [max](std::string& v) {
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
          return "must be a non-negative integer, not '" + v + "'";
        uint64_t value = 0;
        const auto [end, error] = std::from_chars(v.data(), v.data() + v.size(), value);
        if (error != std::errc() || end != v.data() + v.size() || value > max)
          return "'" + v + "' is too large (at most " + std::to_string(max) + ")";
        return std::string();
      },
      "UINT");
}

namespace {

// True if `token` (an option without "=VALUE") takes a value, looking in
// `app` and the apps above it (options fall through to parents).
bool OptionTakesValue(const CLI::App* app, const std::string& token) {
  for (; app != nullptr; app = app->get_parent()) {
    const CLI::Option* opt = app->get_option_no_throw(token);
    if (opt != nullptr) return opt->get_items_expected_max() > 0;
  }
  return false;
}

std::string CommandPath(const CLI::App* app) {
  std::string path;
  for (; app != nullptr; app = app->get_parent()) {
    path = app->get_name() + (path.empty() ? "" : " " + path);
  }
  return path;
}

}  // namespace

std::string UnknownCommandMessage(const CLI::App& app, int argc, const char* const* argv) {
  const CLI::App* current = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string token = argv[i];
    if (token == "--") break;
    if (token.size() > 1 && token[0] == '-') {
      if (token.find('=') == std::string::npos && OptionTakesValue(current, token)) ++i;
      continue;
    }
    const auto subcommands = current->get_subcommands([](const CLI::App*) { return true; });
    const CLI::App* next = nullptr;
    std::vector<std::string_view> names;
    for (const CLI::App* sub : subcommands) {
      if (sub->get_name() == token) next = sub;
      if (!sub->get_name().empty()) names.push_back(sub->get_name());
    }
    if (next != nullptr) {
      current = next;
      continue;
    }
    if (names.empty() || current->get_require_subcommand_min() == 0) return "";
    std::string m = "unknown command '" + token + "' for '" + CommandPath(current) + "'";
    const std::string_view nearest = NearestName(token, names);
    if (EditDistance(token, nearest) <= std::max<size_t>(2, token.size() / 3)) {
      m += " (did you mean '" + std::string(nearest) + "'?)";
    }
    m += "; commands:";
    for (size_t n = 0; n < names.size(); ++n) m += (n == 0 ? " " : ", ") + std::string(names[n]);
    return m;
  }
  return "";
}

std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string unknown = UnknownCommandMessage(app, argc, argv);
    std::fprintf(stderr, "%s: %s\nRun with --help for usage.\n", app.get_name().c_str(),
                 unknown.empty() ? e.what() : unknown.c_str());
    return kExitUsage;
  }
}

}  // namespace cosmos::app
