// The `cosmos` admin CLI against a real cosmosd: `cosmos region VERB ...
// --server` reaches the node (same code as `cosmos remote region`), over a
// plain connection and over a secure one with keys from `cosmos keys`, and
// `cosmos bench rpm` runs against both. Errors exit non-zero with the status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rpm_harness.h"

namespace {

struct Run {
  int exit_code = -1;
  std::string out;
};

std::string CosmosPath() { return std::string(COSMOS_BINARY_DIR) + "/apps/cosmos/cosmos"; }

// Runs the cosmos CLI with `args` (single-quoted for the shell), stderr merged.
Run Cosmos(const std::vector<std::string>& args) {
  std::string cmd = CosmosPath();
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::vector<std::string> Cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(CliRemoteTest, RegionVerbsWithServerReachThePlainNode) {
  rpm_test::TempDir dir;
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir.path, {"--listen", "127.0.0.1", "--pool",
                                 "main=" + dir.path + "/plain.pool,size=16,create"}));
  const std::vector<std::string> conn = {"--server", d.address()};
  auto r = Cosmos(Cat({"region", "create", "notes", "--size", "64K"}, conn));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("created region notes"), std::string::npos) << r.out;
  r = Cosmos(Cat({"region", "write", "notes", "--offset", "8", "--data", "remote bytes"}, conn));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"--json", "region", "read", "notes", "--offset", "8", "--length", "12"}, conn));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("remote bytes"), std::string::npos) << r.out;
  r = Cosmos(Cat({"region", "verify", "notes", "--offset", "8", "--data", "remote bytez"}, conn));
  EXPECT_NE(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"--json", "region", "list"}, conn));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  ASSERT_EQ(j["regions"].size(), 1u);
  EXPECT_EQ(j["regions"][0]["name"], "notes");
  EXPECT_EQ(j["regions"][0]["secure"], false);
  // A secure region cannot be created over a plain connection.
  r = Cosmos(Cat({"region", "create", "vault", "--size", "64K", "--secure"}, conn));
  EXPECT_NE(r.exit_code, 0) << r.out;
  // Out of range: a clear error, nothing written.
  r = Cosmos(Cat({"region", "write", "notes", "--offset", "65530", "--data", "too long"}, conn));
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("out_of_range"), std::string::npos) << r.out;
}

TEST(CliRemoteTest, SecureRegionThroughTheCliWithKeysFromCosmosKeys) {
  rpm_test::TempDir dir;
  ASSERT_EQ(Cosmos({"keys", "platform", dir.path + "/node"}).exit_code, 0);
  ASSERT_EQ(Cosmos({"keys", "client", dir.path + "/clients", "alice"}).exit_code, 0);
  ASSERT_EQ(Cosmos({"keys", "client", dir.path + "/clients", "eve"}).exit_code, 0);
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(
      dir.path,
      {"--listen", "127.0.0.1", "--pool", "main=" + dir.path + "/secure.pool,size=16,create",
       "--platform-keys", dir.path + "/node", "--allow", dir.path + "/clients/alice.pub"}));
  const auto as = [&](const std::string& who) {
    return std::vector<std::string>{"--server",       d.address(),
                                    "--platform-pub", dir.path + "/node/platform.pub",
                                    "--measurement",  dir.path + "/node/measurement",
                                    "--client-key",   dir.path + "/clients/" + who + ".key"};
  };
  auto r = Cosmos(Cat({"region", "create", "vault", "--size", "256K", "--secure"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("created secure region vault"), std::string::npos) << r.out;
  r = Cosmos(
      Cat({"remote", "region", "write", "vault", "--data", "CLI-SECRET-MARKER"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"region", "read", "vault", "--length", "17"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("CLI-SECRET-MARKER"), std::string::npos) << r.out;
  // eve is not on the node's allow list.
  r = Cosmos(Cat({"region", "list"}, as("eve")));
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("permission_denied"), std::string::npos) << r.out;
  // The bench verb runs over the secure connection on secure scratch regions.
  r = Cosmos(Cat({"--json", "bench", "rpm", "--secure", "--op", "write_flush", "--size", "4K",
                  "--ops", "200", "--concurrency", "2"},
                 as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"p50"), std::string::npos) << r.out;
  EXPECT_EQ(d.Stop(SIGTERM), 0);
  // Nothing the CLI wrote is in the node's pool file in plaintext.
  FILE* f = std::fopen((dir.path + "/secure.pool").c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::string bytes;
  std::array<char, 65536> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) bytes.append(buf.data(), n);
  std::fclose(f);
  EXPECT_EQ(bytes.find("CLI-SECRET-MARKER"), std::string::npos);
}

// `cosmos region grant|revoke|access|rotate-key --server`: alice gives bob
// read access with bob's public key file, bob reads and is refused a grant,
// alice lists the access list, rotates the key, revokes bob.
TEST(CliRemoteTest, SecureRegionAccessVerbs) {
  rpm_test::TempDir dir;
  ASSERT_EQ(Cosmos({"keys", "platform", dir.path + "/node"}).exit_code, 0);
  for (const char* who : {"alice", "bob"}) {
    ASSERT_EQ(Cosmos({"keys", "client", dir.path + "/clients", who}).exit_code, 0);
  }
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(
      dir.path,
      {"--listen", "127.0.0.1", "--pool", "main=" + dir.path + "/secure.pool,size=16,create",
       "--platform-keys", dir.path + "/node", "--allow", dir.path + "/clients/alice.pub", "--allow",
       dir.path + "/clients/bob.pub"}));
  const auto as = [&](const std::string& who) {
    return std::vector<std::string>{"--server",       d.address(),
                                    "--platform-pub", dir.path + "/node/platform.pub",
                                    "--measurement",  dir.path + "/node/measurement",
                                    "--client-key",   dir.path + "/clients/" + who + ".key"};
  };
  const std::string bob_pub = dir.path + "/clients/bob.pub";
  auto r = Cosmos(Cat({"region", "create", "vault", "--size", "64K", "--secure"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"region", "write", "vault", "--data", "for bob"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"region", "read", "vault", "--length", "7"}, as("bob")));
  EXPECT_NE(r.exit_code, 0) << r.out;

  r = Cosmos(Cat({"region", "grant", "vault", bob_pub, "--rights", "r"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("granted r-- on region vault"), std::string::npos) << r.out;
  r = Cosmos(Cat({"region", "read", "vault", "--length", "7"}, as("bob")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("for bob"), std::string::npos) << r.out;
  r = Cosmos(Cat({"region", "grant", "vault", bob_pub, "--rights", "rwa"}, as("bob")));
  EXPECT_NE(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"region", "grant", "vault", bob_pub, "--rights", "rx"}, as("alice")));
  EXPECT_NE(r.exit_code, 0) << r.out;

  r = Cosmos(Cat({"--json", "region", "access", "vault"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  ASSERT_EQ(j["access"].size(), 2u) << r.out;
  const uint32_t epoch = j["key_epoch"].get<uint32_t>();
  r = Cosmos(Cat({"--json", "region", "rotate-key", "vault"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_GT(j["key_epoch"].get<uint32_t>(), epoch) << r.out;

  r = Cosmos(Cat({"region", "revoke", "vault", bob_pub}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"region", "read", "vault", "--length", "7"}, as("bob")));
  EXPECT_NE(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"region", "read", "vault", "--length", "7"}, as("alice")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("for bob"), std::string::npos) << r.out;
}

}  // namespace
