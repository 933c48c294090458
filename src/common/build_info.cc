// BuildInfo from the values CMake generated at configure time.
#include "common/build_info.h"

#include "common/build_info_values.h"

namespace cosmos {
namespace {

// The backends every build compiles in (libpmem2 is a required dependency,
// so pmem2 is always present; it falls back to pmem2-emulated off DAX).
constexpr std::string_view kPoolBackends[] = {"file", "pmem2", "pmem2-emulated", "dram"};
constexpr std::string_view kKvBackends[] = {"pool", "file", "memory", "remote"};
constexpr std::string_view kTransports[] = {"udp"};

}  // namespace

const BuildInfo& GetBuildInfo() {
  static const BuildInfo info{
      .version = COSMOS_BUILD_VERSION,
      .git_commit = COSMOS_BUILD_GIT_COMMIT,
      .build_type = COSMOS_BUILD_TYPE,
      .compiler = COSMOS_BUILD_COMPILER,
      .sanitizers = COSMOS_BUILD_SANITIZERS,
      .pool_backends = kPoolBackends,
      .kv_backends = kKvBackends,
      .transports = kTransports,
      .enclave = "simulated",
  };
  return info;
}

std::string VersionLine(std::string_view program) {
  const BuildInfo& b = GetBuildInfo();
  std::string line = std::string(program) + " " + std::string(b.version) + " (commit " +
                     std::string(b.git_commit) + ", " + std::string(b.build_type) + " build";
  if (!b.sanitizers.empty()) line += ", sanitizers " + std::string(b.sanitizers);
  line += ", " + std::string(b.enclave) + " enclave)";
  return line;
}

}  // namespace cosmos
