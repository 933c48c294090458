// `cosmos`: the COSMOS admin CLI. main() only builds the command tree from
// the verb groups (one file each: pool_cmd.cc, region_cmd.cc, ...), parses,
// and turns the command's Status into output and an exit code.
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"
#include "common/log.h"
#include "remote_cmd.h"

namespace {

// `cosmos region VERB ... --server HOST:PORT` is the remote form of the local
// `cosmos region VERB POOL ...`: rewrite it to `cosmos remote region ...` so
// both spellings reach the same code. Only the `region` verb is rewritten,
// and only when --server (or --cluster: the cluster's regions) is present.
std::vector<char*> RouteRemoteRegion(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  int verb = 1;  // skip the global options that may precede the verb
  while (verb < argc) {
    const std::string_view a(argv[verb]);
    if (a == "--json" || a.starts_with("--log-level=")) {
      ++verb;
    } else if (a == "--log-level") {
      verb += 2;
    } else {
      break;
    }
  }
  if (verb >= argc || std::string_view(argv[verb]) != "region") return args;
  for (int i = verb + 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    if (a == "--server" || a.starts_with("--server=") || a == "--cluster" ||
        a.starts_with("--cluster=")) {
      static char kRemote[] = "remote";
      args.insert(args.begin() + verb, kRemote);
      break;
    }
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  cosmos::log::Init("warn");
  std::vector<char*> routed = RouteRemoteRegion(argc, argv);
  argc = static_cast<int>(routed.size());
  argv = routed.data();
  CLI::App app{"cosmos: administer COSMOS persistent-memory pools and regions"};
  cosmos::app::AddVersionFlag(app, "cosmos");
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the verb too

  cosmos::cli::Context ctx;
  app.add_flag("--json", ctx.json, "Print one JSON document instead of human-readable text");
  cosmos::app::LogFlags log_flags;
  cosmos::app::AddLogFlags(app, log_flags, "warn");
  // Before any command callback runs, so the command logs as asked.
  app.parse_complete_callback([&] {
    if (cosmos::Status s = cosmos::log::Configure(log_flags.options()); !s.ok()) ctx.status = s;
  });

  cosmos::cli::RegisterPoolCommands(app, ctx);
  cosmos::cli::RegisterRegionCommands(app, ctx);
  cosmos::cli::RegisterRemoteCommands(app, ctx);
  cosmos::cli::RegisterBenchCommands(app, ctx);
  cosmos::cli::RegisterKeysCommands(app, ctx);
  cosmos::cli::RegisterClusterCommands(app, ctx);
  cosmos::cli::RegisterVersionCommand(app, ctx);
  cosmos::cli::RegisterCompletionCommand(app, ctx);  // last: it describes the whole tree

  if (auto code = cosmos::app::Parse(app, argc, argv)) return *code;

  if (!ctx.status.ok()) {
    if (ctx.json) {
      nlohmann::ordered_json err = {
          {"error",
           {{"code", std::string(cosmos::StatusCodeName(ctx.status.code()))},
            {"message", ctx.status.message()}}}};
      std::cout << err.dump(2) << "\n";
    }
    std::fprintf(stderr, "cosmos: %s\n", ctx.status.ToString().c_str());
    return cosmos::app::kExitFailure;
  }
  if (ctx.json) {
    std::cout << ctx.output.dump(2) << "\n";
  } else {
    std::cout << ctx.text;
  }
  return cosmos::app::kExitOk;
}
