// DaemonConfig: cosmosd's settings from a TOML file (and flags layered on
// top by the app), and opening or creating the pools it names.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "cosmos/result.h"
#include "sec/protected_region.h"
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

// Secure mode (docs/security.md "Secure mode of cosmosd"). Keys of the
// [server] table and flags of the same names.
struct SecureConfig {
  std::string platform_keys;       // `cosmos keys platform` directory; empty: plain node
  std::vector<std::string> allow;  // client public key files (NAME.pub) allowed to connect
  std::string enclave_state;       // trusted-counter directory; empty: platform_keys/state
  uint32_t block_size = sec::kDefaultBlockSize;  // new secure regions; power of two, 512..65536
  bool require_secure = false;                   // refuse plain connections (PermissionDenied)
  // Freshness of secure regions (docs/security.md "Trusted counters"):
  // "strict" (a flush is acknowledged once its trusted-counter value is
  // stable) or "relaxed" (acknowledged at once; at most relaxed_window
  // acknowledged flushes per region can be rolled back after a crash).
  std::string freshness = "strict";
  uint32_t relaxed_window = 8;  // 1..1000000; relaxed mode only
  // Stabilisation delay of the SIMULATED trusted counter (it models a
  // hardware or remote counter's latency); 0..60000 ms.
  uint32_t counter_delay_ms = 20;
  // Operator override, flag only (--accept-counter-reset; never in a file):
  // open regions whose counter file is missing or behind their sealed state
  // by more than the mode allows (docs/operations.md).
  bool accept_counter_reset = false;
};

struct DaemonConfig {
  ServerOptions server;
  std::vector<PoolSpec> pools;
  std::string log_level = "info";
  std::string log_file;             // empty: stderr (server.log_file / --log-file)
  std::string log_format = "text";  // text | json (server.log_format / --log-format)
  SecureConfig secure;
  // HOST:PORT or [IPv6]:PORT of the Prometheus metrics endpoint
  // (server.metrics_listen / --metrics-listen); empty: no metrics endpoint.
  std::string metrics_listen;
};

// Reads `[server]` (including the secure-mode keys), `[qos]` and `[[pool]]`
// from `file` on top of `base` (docs/operations.md lists every key).
// `server.allow` is a string or an array of strings; it replaces base's list.
// A pool's `size` is a byte count or a size string ("64M", common/size.h);
// the deprecated `size_mb` (MiB) still works, with a warning in the log.
// InvalidArgument names the bad key; an unknown key or section is refused
// with its line and the nearest valid key (a typo is never ignored). Settings that depend on each
// other are checked by ValidateSecureConfig once flags are applied.
Result<DaemonConfig> LoadDaemonConfig(const ConfigFile& file, DaemonConfig base = {});

// Checks the secure settings once flags are layered on the file:
// InvalidArgument (naming the setting) for a block size that is not a power
// of two in [512, 65536], a freshness other than strict|relaxed, a
// relaxed_window outside 1..1000000, a counter_delay_ms above 60000, or for
// allow / enclave_state / require_secure without platform_keys.
[[nodiscard]] Status ValidateSecureConfig(const SecureConfig& secure);

// The protected-region policy the secure settings select. REQUIRES:
// ValidateSecureConfig(secure).ok().
sec::RegionPolicy RegionPolicyFor(const SecureConfig& secure);

// One line for logs and `info`: the freshness mode, what it guarantees and
// the rollback window (e.g. "freshness strict: ... rollback window 0 flushes").
std::string DescribeFreshness(const SecureConfig& secure);

// Parses a --pool flag: "PATH" or "NAME=PATH", with optional ",size=SIZE"
// (the size grammar of common/size.h: 64M, 64MiB, 64mb or bytes; 1M..16T;
// a bare number below 1M is the deprecated MiB count, with a warning),
// ",backend=NAME" and ",create" suffixes. InvalidArgument on bad text.
Result<PoolSpec> ParsePoolFlag(const std::string& text);

// The checks a start must pass before it touches anything on disk or the
// network: server.listen is an IPv4 or IPv6 address, the workers' ports fit
// below 65536, server.metrics_listen (when set) is HOST:PORT or [IPv6]:PORT,
// at least one pool, unique pool names, known backends.
// InvalidArgument naming the setting.
[[nodiscard]] Status ValidateStartConfig(const DaemonConfig& cfg);

// Opens every pool (creating those marked `create` that do not exist yet).
// Errors name the pool; on failure nothing is left open and the pool files
// this call created are removed again. On success `created_files` (if not
// null) lists the files it created, so that a start failing later can
// remove them (RemovePoolFiles).
Result<std::vector<ServedPool>> OpenPools(const std::vector<PoolSpec>& specs,
                                          std::vector<std::string>* created_files = nullptr);

// Removes `paths` (pool files a failed start created), logging each.
// REQUIRES: no pool on them is open.
void RemovePoolFiles(const std::vector<std::string>& paths);

}  // namespace cosmos::server
