// Tests of the shared command-line conventions: exit codes, log-level and
// size checks, unknown-command messages.
#include "app_flags.h"

#include <gtest/gtest.h>

#include <vector>

namespace cosmos::app {
namespace {

// Runs Parse on `args` (argv[0] is added).
std::optional<int> ParseArgs(CLI::App& app, std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return Parse(app, static_cast<int>(argv.size()), argv.data());
}

TEST(AppFlags, UsageErrorsExitTwoAndHelpAndVersionExitZero) {
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--log-level", "bogus"},
                                              {"--no-such-flag"},
                                              {"--log-format", "xml"},
                                              {"--size", "64Q"},
                                              {"--count", "-1"},
                                              {"--count", "99999999999999999999999"},
                                              {"--small", "256"},
                                              {"--count", "1e3"},
                                              {"--bytes", "-1"},
                                              {"--bytes", "2K"},
                                              {"--bytes", "99999999999999999999"}}) {
    CLI::App app;
    AddVersionFlag(app, "prog");
    LogFlags log;
    AddLogFlags(app, log, "info");
    std::string size;
    uint64_t count = 0;
    uint8_t small = 0;
    uint64_t bytes = 0;
    app.add_option("--bytes", bytes)->transform(ByteCount(1024));
    app.add_option("--size", size)->check(SizeValidator());
    app.add_option("--count", count)->check(NonNegativeInteger());
    app.add_option("--small", small)->check(NonNegativeInteger(255));
    EXPECT_EQ(ParseArgs(app, bad), kExitUsage) << bad[0] << " " << bad[1];
  }
  CLI::App app;
  AddVersionFlag(app, "prog");
  EXPECT_EQ(ParseArgs(app, {"--version"}), kExitOk);
  CLI::App help;
  EXPECT_EQ(ParseArgs(help, {"--help"}), kExitOk);
  CLI::App fine;
  LogFlags log;
  AddLogFlags(fine, log, "info");
  EXPECT_EQ(ParseArgs(fine, {"--log-level", "debug", "--log-format", "json"}), std::nullopt);
  EXPECT_EQ(log.level, "debug");
  EXPECT_EQ(log.format, "json");
  CLI::App counts;
  uint64_t count = 0;
  counts.add_option("--count", count)->check(NonNegativeInteger());
  EXPECT_EQ(ParseArgs(counts, {"--count", "18446744073709551615"}), std::nullopt);
  EXPECT_EQ(count, UINT64_MAX);
  // The messages name the bound (CLI11's own conversion would only say
  // "Could not convert").
  std::string too_big = "256";
  EXPECT_EQ(NonNegativeInteger(255)(too_big), "'256' is too large (at most 255)");
  std::string negative = "-1";
  EXPECT_EQ(NonNegativeInteger()(negative), "must be a non-negative integer, not '-1'");
  std::string length = "65M";
  EXPECT_EQ(ByteCount(64u << 20)(length), "'65M' is too large (at most 64M = 67108864 bytes)");
  CLI::App sizes;
  uint64_t bytes = 0;
  sizes.add_option("--bytes", bytes)->transform(ByteCount());
  EXPECT_EQ(ParseArgs(sizes, {"--bytes", "4K"}), std::nullopt);
  EXPECT_EQ(bytes, 4096u);
  EXPECT_EQ(ParseArgs(sizes, {"--bytes", "17"}), std::nullopt);
  EXPECT_EQ(bytes, 17u);
}

TEST(AppFlags, UnknownCommandIsNamedWithTheNearestOne) {
  CLI::App app;
  app.name("cosmos");
  app.require_subcommand(1);
  std::string level;
  app.add_option("--log-level", level);
  app.add_flag("--json");
  CLI::App* region = app.add_subcommand("region");
  region->require_subcommand(1);
  region->add_subcommand("create");
  region->add_subcommand("list");
  app.add_subcommand("pool");
  const char* typo[] = {"cosmos", "--log-level", "warn", "--json", "regoin", "list"};
  EXPECT_EQ(UnknownCommandMessage(app, 6, typo),
            "unknown command 'regoin' for 'cosmos' (did you mean 'region'?); commands: region, "
            "pool");
  const char* deep[] = {"cosmos", "region", "lst"};
  EXPECT_EQ(UnknownCommandMessage(app, 3, deep),
            "unknown command 'lst' for 'cosmos region' (did you mean 'list'?); commands: create, "
            "list");
  // No suggestion for a word that is nothing like any command.
  const char* far[] = {"cosmos", "region", "frobnicate"};
  EXPECT_EQ(UnknownCommandMessage(app, 3, far),
            "unknown command 'frobnicate' for 'cosmos region'; commands: create, list");
  const char* fine[] = {"cosmos", "region", "list", "extra"};
  EXPECT_EQ(UnknownCommandMessage(app, 4, fine), "");
}

}  // namespace
}  // namespace cosmos::app
