// The `cosmos` admin CLI against a real cosmosd: `cosmos region VERB ...
// --server` reaches the node (same code as `cosmos remote region`), over a
// plain connection and over a secure one with keys from `cosmos keys`, and
// `cosmos bench rpm` runs against both. Errors exit non-zero with the status.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <functional>
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

// One grammar: the local form (`region VERB POOL ...`) and the remote form
// (`region VERB ... --server`) take the same flags and print the same
// formats (read, --hex, write, verify, list header and JSON keys).
TEST(CliRemoteTest, LocalAndRemoteVerbsShareFlagsAndOutputFormats) {
  rpm_test::TempDir dir;
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir.path, {"--listen", "127.0.0.1", "--pool",
                                 "main=" + dir.path + "/node.pool,size=16M,create"}));
  const std::vector<std::string> conn = {"--server", d.address()};
  const std::string pool = dir.path + "/local.pool";
  ASSERT_EQ(Cosmos({"pool", "create", pool, "--size", "4M"}).exit_code, 0);
  // Both forms, each with the same trailing arguments.
  auto local = [&](const std::string& verb, std::vector<std::string> rest) {
    std::vector<std::string> args = {"region", verb, pool};
    args.insert(args.end(), rest.begin(), rest.end());
    return Cosmos(args);
  };
  auto remote = [&](const std::string& verb, std::vector<std::string> rest) {
    std::vector<std::string> args = {"region", verb};
    args.insert(args.end(), rest.begin(), rest.end());
    return Cosmos(Cat(args, conn));
  };
  struct Form {
    const char* name;
    std::function<::Run(const std::string&, std::vector<std::string>)> run;
  };
  std::vector<Form> forms = {{"local", local}, {"remote", remote}};
  std::vector<std::string> read_json_keys, list_headers;
  for (const Form& f : forms) {
    SCOPED_TRACE(f.name);
    ASSERT_EQ(f.run("create", {"notes", "--size", "64K"}).exit_code, 0);
    ::Run r = f.run("write", {"notes", "--offset", "1K", "--data", "hello"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("wrote and persisted 5 bytes at offset 1024 of region 'notes'", 0), 0u)
        << r.out;
    r = f.run("read", {"notes", "--offset", "1K", "--length", "5"});
    EXPECT_EQ(r.out, "hello\n");
    r = f.run("read", {"notes", "--offset", "1024", "--length", "5", "--hex"});
    EXPECT_EQ(r.out, "68656c6c6f\n");
    r = f.run("read", {"notes", "--offset", "1K", "--length", "6", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_EQ(j["hex"], "68656c6c6f00");
    EXPECT_TRUE(j["text"].is_null());  // a NUL byte is not printable
    std::string keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys += it.key() + " ";
    read_json_keys.push_back(keys);
    EXPECT_EQ(f.run("verify", {"notes", "--offset", "1K", "--data", "hello"}).exit_code, 0);
    r = f.run("verify", {"notes", "--offset", "1K", "--data", "hellp"});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("integrity_violation"), std::string::npos) << r.out;
    // Usage errors are the same in both forms and exit 2.
    for (const std::vector<std::string>& bad : {std::vector<std::string>{"notes", "--length", "-1"},
                                                {"notes", "--length", "99999999999999999999999"},
                                                {"notes", "--offset", "-5"},
                                                {"notes", "--length", "65M"}}) {
      r = f.run("read", bad);
      EXPECT_EQ(r.exit_code, 2) << bad[1] << " " << bad[2] << ": " << r.out;
      EXPECT_NE(r.out.find(bad[1]), std::string::npos) << r.out;
    }
    r = f.run("write", {"notes"});
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("--data"), std::string::npos) << r.out;
    r = f.run("list", {});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    list_headers.push_back(r.out.substr(0, r.out.find("BYTES") + 5));
    EXPECT_NE(r.out.find("\n1 region(s)\n"), std::string::npos) << r.out;
    r = f.run("list", {"--json"});
    j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_EQ(j["regions"][0]["name"], "notes");
    EXPECT_EQ(j["regions"][0]["size"], 65536);
  }
  EXPECT_EQ(read_json_keys[0], read_json_keys[1]);
  EXPECT_EQ(list_headers[0], list_headers[1]);
  EXPECT_EQ(list_headers[0], "NAME   SIZE      BYTES");
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

// `cosmos keys region-key` and --user-key-file on `region create --secure` and
// `region rotate-key`: the region is created and rotated under keys the user
// holds; the key file is private; misuse is refused before anything is sent.
TEST(CliRemoteTest, UserSuppliedRegionKeysFromKeyFiles) {
  rpm_test::TempDir dir;
  ASSERT_EQ(Cosmos({"keys", "platform", dir.path + "/node"}).exit_code, 0);
  ASSERT_EQ(Cosmos({"keys", "client", dir.path + "/clients", "alice"}).exit_code, 0);
  const std::string key1 = dir.path + "/clients/vault.regionkey";
  const std::string key2 = dir.path + "/clients/vault2.regionkey";
  auto r = Cosmos({"keys", "region-key", key1});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_EQ(Cosmos({"keys", "region-key", key2}).exit_code, 0);
  struct stat st {};
  ASSERT_EQ(::stat(key1.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(Cosmos({"keys", "region-key", key1}).exit_code, 0);  // exists: no silent overwrite

  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(
      dir.path,
      {"--listen", "127.0.0.1", "--pool", "main=" + dir.path + "/secure.pool,size=16,create",
       "--platform-keys", dir.path + "/node", "--allow", dir.path + "/clients/alice.pub"}));
  const std::vector<std::string> alice = {"--server",       d.address(),
                                          "--platform-pub", dir.path + "/node/platform.pub",
                                          "--measurement",  dir.path + "/node/measurement",
                                          "--client-key",   dir.path + "/clients/alice.key"};
  r = Cosmos(Cat(
      {"region", "create", "vault", "--size", "64K", "--secure", "--user-key-file", key1}, alice));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"region", "write", "vault", "--data", "OWN-KEY-MARKER"}, alice));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"--json", "region", "rotate-key", "vault", "--user-key-file", key2}, alice));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["key_epoch"].get<uint32_t>(), 2u) << r.out;
  r = Cosmos(Cat({"region", "read", "vault", "--length", "14"}, alice));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("OWN-KEY-MARKER"), std::string::npos) << r.out;

  // A user key for a plain region, a missing or wrong-kind key file.
  r = Cosmos(Cat({"region", "create", "p", "--size", "4K", "--user-key-file", key1}, alice));
  EXPECT_NE(r.exit_code, 0) << r.out;
  r = Cosmos(Cat({"region", "rotate-key", "vault", "--user-key-file", dir.path + "/none"}, alice));
  EXPECT_NE(r.exit_code, 0) << r.out;
  r = Cosmos(
      Cat({"region", "rotate-key", "vault", "--user-key-file", dir.path + "/clients/alice.pub"},
          alice));
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("region-key"), std::string::npos) << r.out;
}

}  // namespace
