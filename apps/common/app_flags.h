// The command-line conventions every COSMOS binary shares: --version, the
// log flags, size flags, one parse step with one exit-code policy
// (docs/operations.md "Exit codes": 0 ok, 1 runtime failure, 2 usage or
// configuration error).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"

namespace cosmos::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed
inline constexpr int kExitUsage = 2;    // bad flags, arguments or configuration

// Names `app` `program` (in usage lines and Parse's messages) and adds
// --version: prints VersionLine(program) on stdout and exits 0 (through
// Parse).
void AddVersionFlag(CLI::App& app, std::string_view program);

// Values of the log flags; `level` stays empty unless --log-level was given.
struct LogFlags {
  std::string level;
  std::string file;
  std::string format = "text";
  // The log::Options these flags select.
  log::Options options() const { return {level, file, format}; }
};

// Adds --log-level (checked with log::ValidateLevel), --log-file and
// --log-format (text|json) to `app`, bound to `flags` (which must outlive the
// parse). `default_level` is only shown in the help text.
void AddLogFlags(CLI::App& app, LogFlags& flags, std::string_view default_level);

// A CLI11 check accepting exactly the ParseSize grammar (common/size.h), so a
// bad unit is a usage error with the same message in every binary.
CLI::Validator SizeValidator();

// A CLI11 check for byte counts and offsets: the ParseSize grammar (so
// "4096", "4K" and "1MiB" all work), at most `max`; the option then sees the
// plain decimal count (so add it with ->transform(), not ->check()). A sign,
// an unknown unit or overflow is a usage error.
CLI::Validator ByteCount(uint64_t max = UINT64_MAX);

// A CLI11 check for unsigned integer options: decimal digits only, at most
// `max` (pass the option type's maximum). CLI11 alone would wrap "-1" to
// 2^64-1 and accept a number past 2^64; both are usage errors here.
CLI::Validator NonNegativeInteger(uint64_t max = UINT64_MAX);

// Parses argv into `app`. Returns nullopt when the program should go on, or
// the code to exit with: kExitOk after --help or --version (printed on
// stdout), kExitUsage after a usage error (printed on stderr, as
// "PROGRAM: MESSAGE" plus a hint to run --help). An unknown subcommand is
// named as such, with the nearest valid one and the list of valid ones.
std::optional<int> Parse(CLI::App& app, int argc, char** argv);

// For apps with subcommands: the message for argv's first word that is not
// a subcommand where one is required ("unknown command 'regoin' for
// 'cosmos' (did you mean 'region'?); commands: pool, region, ..."; the
// suggestion only when it is a plausible typo, at most 2 edits or a third of
// the word away); empty when argv names no such word. Exposed for tests.
std::string UnknownCommandMessage(const CLI::App& app, int argc, const char* const* argv);

}  // namespace cosmos::app
