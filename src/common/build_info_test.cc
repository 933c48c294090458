// Tests of the build facts behind --version and `cosmos version`.
#include "common/build_info.h"

#include <gtest/gtest.h>

#include "cosmos/version.h"

namespace cosmos {
namespace {

TEST(BuildInfo, NamesVersionCommitBuildTypeAndEnclave) {
  const BuildInfo& b = GetBuildInfo();
  EXPECT_EQ(b.version, COSMOS_VERSION_STRING);
  EXPECT_FALSE(b.git_commit.empty());
  EXPECT_FALSE(b.build_type.empty());
  EXPECT_EQ(b.enclave, "simulated");
  EXPECT_FALSE(b.pool_backends.empty());
  EXPECT_FALSE(b.kv_backends.empty());
  const std::string line = VersionLine("cosmosd");
  EXPECT_EQ(line.rfind("cosmosd " + std::string(COSMOS_VERSION_STRING) + " (commit ", 0), 0u)
      << line;
  EXPECT_NE(line.find(std::string(b.git_commit)), std::string::npos) << line;
  EXPECT_NE(line.find("simulated enclave"), std::string::npos) << line;
}

}  // namespace
}  // namespace cosmos
