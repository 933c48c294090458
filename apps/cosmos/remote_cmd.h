// Remote verb groups of the `cosmos` CLI: `cosmos remote region ...` (regions
// on a cosmosd node) and `cosmos bench rpm` (load generator with latency
// percentiles), both taking --server HOST:PORT.
#pragma once

#include "cli.h"

namespace cosmos::cli {

// Adds `remote` with `region create|list|delete|write|read|verify`.
void RegisterRemoteCommands(CLI::App& app, Context& ctx);
// Adds `bench` with `rpm`.
void RegisterBenchCommands(CLI::App& app, Context& ctx);

}  // namespace cosmos::cli
