// Remote verb groups of the `cosmos` CLI: `cosmos remote region ...` (regions
// on a cosmosd node) and `cosmos bench rpm` (load generator with latency
// percentiles), both taking --server HOST:PORT.
#pragma once

#include "cli.h"
#include "cosmos/client.h"

namespace cosmos::cli {

// Adds the connection flags shared by every remote verb to `cmd`, bound to
// `options` (which must outlive the parse): --server, --timeout-ms and the
// three secure-connection files --platform-pub, --measurement, --client-key
// (all three, or none for a plain connection).
void AddConnectOptions(CLI::App& cmd, ClientOptions& options);
// Adds `remote` with `region create|list|delete|write|read|verify`.
void RegisterRemoteCommands(CLI::App& app, Context& ctx);
// Adds `bench` with `rpm`.
void RegisterBenchCommands(CLI::App& app, Context& ctx);

}  // namespace cosmos::cli
