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
                                              {"--count", "-1"}}) {
    CLI::App app;
    AddVersionFlag(app, "prog");
    LogFlags log;
    AddLogFlags(app, log, "info");
    std::string size;
    uint64_t count = 0;
    app.add_option("--size", size)->check(SizeValidator());
    app.add_option("--count", count)->check(NonNegativeInteger());
    EXPECT_EQ(ParseArgs(app, bad), kExitUsage) << bad[0];
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
  const char* fine[] = {"cosmos", "region", "list", "extra"};
  EXPECT_EQ(UnknownCommandMessage(app, 4, fine), "");
}

}  // namespace
}  // namespace cosmos::app
