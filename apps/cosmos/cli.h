// Shared plumbing of the `cosmos` admin CLI: global options, output in human
// or JSON form, the Status that decides the exit code. Sizes use the one
// grammar of common/size.h.
// Each verb group lives in its own file and registers itself from main.cc.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "app_flags.h"
#include "common/size.h"
#include "cosmos/result.h"

namespace cosmos::cli {

// State shared by every command of one invocation.
struct Context {
  bool json = false;              // --json: one JSON document on stdout
  Status status;                  // the command's outcome; non-ok -> exit 1
  nlohmann::ordered_json output;  // JSON output of the command (if any)
  std::string text;               // human output of the command (if any)

  // Records the command's result: `human` for the default output, `json`
  // for --json.
  void Emit(std::string human, nlohmann::ordered_json json_doc);
};

// "1.5 MiB" style rendering for human output.
std::string HumanBytes(uint64_t bytes);

// Rights on a secure region for `cosmos region grant --rights`: letters of
// "rwa" ("rw") or comma-separated words read, write, admin ("read,write"),
// in any order. Returns cosmos::kAccess* bits, never 0. InvalidArgument for
// anything else (an empty value included: revoking is `region revoke`).
Result<uint8_t> ParseRights(std::string_view text);
// "rwa"-style rendering of rights bits, '-' for a missing right ("r--").
std::string RightsName(uint8_t rights);

// Verb groups. Each adds one subcommand (with its own verbs) to `app`;
// commands store their outcome in `ctx` from their callbacks.
void RegisterPoolCommands(CLI::App& app, Context& ctx);
void RegisterRegionCommands(CLI::App& app, Context& ctx);
void RegisterKeysCommands(CLI::App& app, Context& ctx);
// Adds `version`: version, git commit, build type, backends, enclave kind.
void RegisterVersionCommand(CLI::App& app, Context& ctx);

}  // namespace cosmos::cli
