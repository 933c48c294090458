// What this build of COSMOS is: version, git commit, build type, compiled-in
// backends and enclave kind, for `--version`, `cosmos version` and logs.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace cosmos {

// Facts fixed when the build was configured (src/common/CMakeLists.txt).
// All views point to static storage.
struct BuildInfo {
  std::string_view version;     // project version, "0.1.0"
  std::string_view git_commit;  // `git rev-parse` at configure time, or "unknown"
  std::string_view build_type;  // CMAKE_BUILD_TYPE ("RelWithDebInfo", ...)
  std::string_view compiler;    // "GNU 12.2.0"
  std::string_view sanitizers;  // COSMOS_SANITIZE ("" when none)
  std::span<const std::string_view> pool_backends;  // pmem pool mappings
  std::span<const std::string_view> kv_backends;    // cosmos-kv --backend values
  std::span<const std::string_view> transports;     // RPC transports
  std::string_view enclave;  // enclave kind: "simulated" (no hardware isolation)
};

// The build's facts. Thread-safe (constant data).
const BuildInfo& GetBuildInfo();

// The one-line `--version` text of `program`, e.g. "cosmosd 0.1.0 (commit
// 2e147e6a1b2c, RelWithDebInfo build, simulated enclave)". Thread-safe.
std::string VersionLine(std::string_view program);

}  // namespace cosmos
