// Shared plumbing of the `cosmos` admin CLI: global options, output in human
// or JSON form, the Status that decides the exit code. Sizes use the one
// grammar of common/size.h.
// Each verb group lives in its own file and registers itself from main.cc.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

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

// --- One set of flags and output formats for the local (`region VERB POOL`)
// and remote (`region VERB --server H:P`) region verbs.

// --offset (and for reads --length, --hex) of a region verb.
struct RangeFlags {
  uint64_t offset = 0;
  uint64_t length = 64;
  bool hex = false;
};
// --data TEXT | --file PATH of write and verify.
struct PayloadFlags {
  std::string data, file;
  CLI::Option* data_option = nullptr;
  CLI::Option* file_option = nullptr;
};
// Largest --length a read prints.
inline constexpr uint64_t kMaxReadLength = 64u << 20;

void AddOffsetOption(CLI::App* cmd, RangeFlags* flags);
// --offset, --length (at most kMaxReadLength) and --hex.
void AddReadOptions(CLI::App* cmd, RangeFlags* flags);
// --data and --file (exclusive); `what` says what the bytes are for.
void AddPayloadOptions(CLI::App* cmd, PayloadFlags* flags, std::string_view what);
// The bytes --data or --file name. InvalidArgument when neither was given,
// NotFound when the file cannot be read.
Result<std::vector<std::byte>> LoadPayload(const PayloadFlags& flags);

// Bytes for a human: as text when every byte is printable (and !hex), else
// lowercase hex, 32 bytes per line.
std::string ShowBytes(std::span<const std::byte> bytes, bool hex);
// Output of read: the bytes (ShowBytes) or {"region", "offset", "length",
// "text" (null unless printable), "hex"}.
void EmitRead(Context& ctx, std::string_view region, uint64_t offset,
              std::span<const std::byte> bytes, bool hex);
// Output of write: "wrote and persisted N bytes at offset O of region 'R'
// (durability D)" or {"region", "offset", "length", "durability"}.
void EmitWrite(Context& ctx, std::string_view region, uint64_t offset, uint64_t length,
               std::string_view durability);
// Output of a successful verify.
void EmitVerified(Context& ctx, std::string_view region, uint64_t offset, uint64_t length);
// Output of list: an aligned table whose first columns are NAME, SIZE,
// BYTES (then `extra_columns`), a "N region(s)" line, or {source_key:
// source, "regions": regions}. Each row is name, size, then the extra
// cells.
struct RegionRow {
  std::string name;
  uint64_t size = 0;
  std::vector<std::string> extra;
};
void EmitRegionList(Context& ctx, const std::vector<std::string>& extra_columns,
                    const std::vector<RegionRow>& rows, std::string_view source_key,
                    std::string_view source, nlohmann::ordered_json regions);

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
// Adds `cluster status|nodes|regions --cluster ETCD` (cluster_cmd.cc).
void RegisterClusterCommands(CLI::App& app, Context& ctx);
// Adds `version`: version, git commit, build type, backends, enclave kind.
void RegisterVersionCommand(CLI::App& app, Context& ctx);
// Adds `completion bash|zsh`: a completion script generated from `app`'s
// command tree (verbs, flags, flag choices). `app` must be the root command
// and outlive the parse.
void RegisterCompletionCommand(CLI::App& app, Context& ctx);

}  // namespace cosmos::cli
