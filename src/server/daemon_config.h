// DaemonConfig: cosmosd's settings from a TOML file (and flags layered on
// top by the app), and opening or creating the pools it names.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "cosmos/result.h"
#include "server/server.h"

namespace cosmos::server {

// One pool cosmosd serves.
struct PoolSpec {
  std::string name;                 // how clients name it (RegionOptions.pool)
  std::string path;                 // pool file (or DAX file)
  uint64_t size_bytes = 64u << 20;  // used when creating
  std::string backend = "auto";     // auto | file | pmem2 | pmem2-emulated | dram
  bool create = false;              // create the pool if the file does not exist
};

struct DaemonConfig {
  ServerOptions server;
  std::vector<PoolSpec> pools;
  std::string log_level = "info";
};

// Reads `[server]`, `[qos]` and `[[pool]]` from `file` on top of `base`
// (docs/operations.md lists every key). InvalidArgument names the bad key.
Result<DaemonConfig> LoadDaemonConfig(const ConfigFile& file, DaemonConfig base = {});

// Parses a --pool flag: "PATH" or "NAME=PATH", with optional ",size=MB",
// ",backend=NAME" and ",create" suffixes. InvalidArgument on bad text.
Result<PoolSpec> ParsePoolFlag(const std::string& text);

// Opens every pool (creating those marked `create` that do not exist yet).
// Errors name the pool; nothing is left open on failure.
Result<std::vector<ServedPool>> OpenPools(const std::vector<PoolSpec>& specs);

}  // namespace cosmos::server
