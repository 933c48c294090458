// Output and parsing helpers of the admin CLI.
#include "cli.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/build_info.h"
#include "cosmos/client.h"

namespace cosmos::cli {

void Context::Emit(std::string human, nlohmann::ordered_json json_doc) {
  text = std::move(human);
  output = std::move(json_doc);
}

Result<uint8_t> ParseRights(std::string_view text) {
  const Status bad = Status::InvalidArgument("rights '" + std::string(text) +
                                             "': use letters of rwa (e.g. rw) or read,write,admin");
  uint8_t rights = 0;
  if (text.find_first_not_of("rwa") == std::string_view::npos) {
    for (char c : text) rights |= c == 'r' ? kAccessRead : c == 'w' ? kAccessWrite : kAccessAdmin;
  } else {
    size_t pos = 0;
    while (pos <= text.size()) {
      const size_t comma = std::min(text.find(',', pos), text.size());
      const std::string_view word = text.substr(pos, comma - pos);
      if (word == "read") {
        rights |= kAccessRead;
      } else if (word == "write") {
        rights |= kAccessWrite;
      } else if (word == "admin") {
        rights |= kAccessAdmin;
      } else {
        return bad;
      }
      pos = comma + 1;
    }
  }
  if (rights == 0) return bad;
  return rights;
}

std::string RightsName(uint8_t rights) {
  std::string out = "---";
  if (rights & kAccessRead) out[0] = 'r';
  if (rights & kAccessWrite) out[1] = 'w';
  if (rights & kAccessAdmin) out[2] = 'a';
  return out;
}

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  }
  return buf;
}

void RegisterVersionCommand(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand(
      "version", "Print the version, git commit, build type, backends and enclave kind");
  cmd->callback([&ctx] {
    const BuildInfo& b = GetBuildInfo();
    auto list = [](std::span<const std::string_view> items) {
      nlohmann::ordered_json a = nlohmann::ordered_json::array();
      for (std::string_view i : items) a.push_back(i);
      return a;
    };
    auto join = [](std::span<const std::string_view> items) {
      std::string out;
      for (std::string_view i : items) out += (out.empty() ? "" : ", ") + std::string(i);
      return out;
    };
    nlohmann::ordered_json j = {{"version", b.version},
                                {"git_commit", b.git_commit},
                                {"build_type", b.build_type},
                                {"compiler", b.compiler},
                                {"sanitizers", b.sanitizers},
                                {"pool_backends", list(b.pool_backends)},
                                {"kv_backends", list(b.kv_backends)},
                                {"transports", list(b.transports)},
                                {"enclave", b.enclave}};
    std::string text = VersionLine("cosmos") + "\n";
    text += "  pool backends: " + join(b.pool_backends) + "\n";
    text += "  kv backends:   " + join(b.kv_backends) + "\n";
    text += "  transports:    " + join(b.transports) + "\n";
    text += "  enclave:       " + std::string(b.enclave) + " (no hardware isolation)\n";
    text += "  compiler:      " + std::string(b.compiler) + "\n";
    ctx.Emit(text, j);
  });
}

}  // namespace cosmos::cli
