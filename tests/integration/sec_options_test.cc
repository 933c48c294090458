// cosmosd's secure-mode options as a real process: --require-secure refuses
// plain connections with PermissionDenied and still serves secure ones; the
// same settings from the TOML config file ([server] platform_keys, allow,
// enclave_state, secure_block_size, require_secure); bad combinations make
// cosmosd exit with status 2 before serving; freshness options; a deleted
// trusted counter makes the region unusable until --accept-counter-reset.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cosmos/client.h"
#include "rpm_harness.h"
#include "sec/key_files.h"

namespace {

class SecOptions : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir_.path + "/node").ok());
    ASSERT_TRUE(cosmos::sec::GenerateClientCredentials(dir_.path + "/clients", "alice").ok());
    pool_ = dir_.path + "/opt.pool";
  }

  cosmos::Result<std::unique_ptr<cosmos::Client>> Connect(const rpm_test::Daemon& d, bool secure) {
    cosmos::ClientOptions o;
    o.server = d.address();
    o.timeout_ms = 5000;
    if (secure) {
      o.platform_public_key_file = dir_.path + "/node/platform.pub";
      o.measurement_file = dir_.path + "/node/measurement";
      o.client_key_file = dir_.path + "/clients/alice.key";
    }
    return cosmos::Client::Connect(o);
  }

  // Runs cosmosd with `args` to completion (it must exit on its own).
  int RunToExit(const std::vector<std::string>& args) {
    rpm_test::Daemon d;
    EXPECT_FALSE(d.Start(dir_.path, args)) << "cosmosd should refuse to start";
    return d.Stop(SIGKILL);
  }

  rpm_test::TempDir dir_;
  std::string pool_;
};

TEST_F(SecOptions, RequireSecureRefusesPlainConnectionsOnly) {
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir_.path, {"--listen", "127.0.0.1", "--pool", pool_ + ",size=16,create",
                                  "--platform-keys", dir_.path + "/node", "--allow",
                                  dir_.path + "/clients/alice.pub", "--require-secure"}));
  auto plain = Connect(d, false);
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), cosmos::StatusCode::kPermissionDenied) << plain.status();
  auto secure = Connect(d, true);
  ASSERT_TRUE(secure.ok()) << secure.status();
  // Plain regions are still served, over the secure connection.
  EXPECT_TRUE((*secure)->CreateRegion("p", 64 * 1024).ok());
  EXPECT_TRUE((*secure)->CreateRegion("s", 64 * 1024, {.secure = true}).ok());
  // Default block size 4 KiB: a 3 KiB secure region is refused (the config
  // test below creates one with secure_block_size = 1024).
  EXPECT_FALSE((*secure)->CreateRegion("s3k", 3 * 1024, {.secure = true}).ok());
}

TEST_F(SecOptions, WithoutRequireSecurePlainConnectionsAreAccepted) {
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(
      dir_.path, {"--listen", "127.0.0.1", "--pool", pool_ + ",size=16,create", "--platform-keys",
                  dir_.path + "/node", "--allow", dir_.path + "/clients/alice.pub"}));
  auto plain = Connect(d, false);
  ASSERT_TRUE(plain.ok()) << plain.status();
}

TEST_F(SecOptions, SecureSettingsFromTheConfigFile) {
  const std::string config = dir_.path + "/cosmosd.toml";
  {
    std::ofstream out(config);
    out << "[server]\n"
        << "listen = \"127.0.0.1\"\n"
        << "platform_keys = \"" << dir_.path << "/node\"\n"
        << "allow = [\"" << dir_.path << "/clients/alice.pub\"]\n"
        << "enclave_state = \"" << dir_.path << "/enclave-state\"\n"
        << "secure_block_size = 1024\n"
        << "require_secure = true\n"
        << "[[pool]]\nname = \"main\"\npath = \"" << pool_ << "\"\nsize_mb = 16\ncreate = true\n";
  }
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir_.path, {"--config", config}));
  auto plain = Connect(d, false);
  EXPECT_EQ(plain.status().code(), cosmos::StatusCode::kPermissionDenied) << plain.status();
  auto secure = Connect(d, true);
  ASSERT_TRUE(secure.ok()) << secure.status();
  // secure_block_size = 1024: a secure region's size must be a multiple of
  // it (3 KiB is, and is not a multiple of the 4 KiB default).
  auto info = (*secure)->CreateRegion("s", 3 * 1024, {.secure = true});
  ASSERT_TRUE(info.ok()) << info.status();
  auto r = (*secure)->OpenRegion("s");
  ASSERT_TRUE(r.ok());
  std::vector<std::byte> data(100, std::byte{0x42}), out(100);
  ASSERT_TRUE((*r)->Write(2048, data).ok());
  ASSERT_TRUE((*r)->Flush(2048, 100).ok());
  ASSERT_TRUE((*r)->Read(2048, out).ok());
  EXPECT_EQ(out, data);
  // The trusted counters live in enclave_state.
  EXPECT_TRUE(std::filesystem::exists(dir_.path + "/enclave-state"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path + "/node/state"));
}

TEST_F(SecOptions, BadSecureSettingsStopCosmosdWithStatus2) {
  const std::string pool_flag = pool_ + ",size=16,create";
  int st = RunToExit({"--pool", pool_flag, "--require-secure"});
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 2) << "--require-secure without --platform-keys";
  st = RunToExit({"--pool", pool_flag, "--allow", dir_.path + "/clients/alice.pub"});
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 2) << "--allow without --platform-keys";
  st = RunToExit(
      {"--pool", pool_flag, "--platform-keys", dir_.path + "/node", "--secure-block-size", "3000"});
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_NE(WEXITSTATUS(st), 0) << "block size not a power of two";
  const std::string config = dir_.path + "/bad.toml";
  {
    std::ofstream out(config);
    out << "[server]\nsecure_block_size = 3000\n";
  }
  st = RunToExit({"--pool", pool_flag, "--config", config});
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 2) << "bad secure_block_size in the config file";
  {
    std::ofstream out(config);
    out << "[server]\nrequire_secure = true\n";
  }
  st = RunToExit({"--pool", pool_flag, "--config", config});
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 2) << "require_secure without platform_keys";
  // The flag completes the file: platform keys from the command line.
  rpm_test::Daemon d;
  EXPECT_TRUE(d.Start(dir_.path, {"--listen", "127.0.0.1", "--pool", pool_flag, "--config", config,
                                  "--platform-keys", dir_.path + "/node"}));
}

TEST_F(SecOptions, FreshnessOptionsAreCheckedAndRelaxedModeServes) {
  const std::string pool_flag = pool_ + ",size=16,create";
  const std::string keys = dir_.path + "/node";
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--freshness", "eventual"},
        std::vector<std::string>{"--relaxed-window", "0"},
        std::vector<std::string>{"--counter-delay-ms", "70000"}}) {
    std::vector<std::string> args = {"--pool", pool_flag, "--platform-keys", keys};
    args.insert(args.end(), bad.begin(), bad.end());
    const int st = RunToExit(args);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_NE(WEXITSTATUS(st), 0) << bad[0] << " " << bad[1];
  }
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(
      dir_.path, {"--listen", "127.0.0.1", "--pool", pool_flag, "--platform-keys", keys, "--allow",
                  dir_.path + "/clients/alice.pub", "--freshness", "relaxed", "--relaxed-window",
                  "4", "--counter-delay-ms", "1", "--secure-flushers", "4"}));
  auto secure = Connect(d, true);
  ASSERT_TRUE(secure.ok()) << secure.status();
  ASSERT_TRUE((*secure)->CreateRegion("s", 64 * 1024, {.secure = true}).ok());
  auto r = (*secure)->OpenRegion("s");
  ASSERT_TRUE(r.ok());
  std::vector<std::byte> data(100, std::byte{0x17}), out(100);
  for (int i = 0; i < 20; ++i) {  // more flushes than the window
    ASSERT_TRUE((*r)->Write(static_cast<uint64_t>(i) * 100, data).ok());
    ASSERT_TRUE((*r)->Flush(static_cast<uint64_t>(i) * 100, 100).ok());
  }
  ASSERT_TRUE((*r)->Read(1900, out).ok());
  EXPECT_EQ(out, data);
}

TEST_F(SecOptions, DeletedTrustedCounterRefusesTheRegionUntilTheOverride) {
  const std::vector<std::string> args = {"--listen",
                                         "127.0.0.1",
                                         "--pool",
                                         pool_ + ",size=16,create",
                                         "--platform-keys",
                                         dir_.path + "/node",
                                         "--allow",
                                         dir_.path + "/clients/alice.pub",
                                         "--counter-delay-ms",
                                         "1"};
  std::vector<std::byte> data(100, std::byte{0x66}), out(100);
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir_.path, args));
    auto secure = Connect(d, true);
    ASSERT_TRUE(secure.ok()) << secure.status();
    ASSERT_TRUE((*secure)->CreateRegion("s", 64 * 1024, {.secure = true}).ok());
    auto r = (*secure)->OpenRegion("s");
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE((*r)->Write(0, data).ok());
    ASSERT_TRUE((*r)->Flush(0, 100).ok());
    r->reset();
    secure->reset();
    EXPECT_EQ(d.Stop(SIGTERM), 0);
  }
  // The host deletes the enclave's counter files.
  int removed = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path + "/node/state")) {
    if (e.path().filename().string().rfind("counter-", 0) == 0) {
      std::filesystem::remove(e.path());
      ++removed;
    }
  }
  ASSERT_GT(removed, 0);
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir_.path, args));
    auto secure = Connect(d, true);
    ASSERT_TRUE(secure.ok()) << secure.status();
    auto r = (*secure)->OpenRegion("s");
    cosmos::Status st = r.ok() ? (*r)->Read(0, out) : r.status();
    EXPECT_EQ(st.code(), cosmos::StatusCode::kIntegrityViolation) << st;
    EXPECT_NE(st.message().find("missing"), std::string::npos) << st;
  }
  {
    std::vector<std::string> over = args;
    over.push_back("--accept-counter-reset");
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir_.path, over));
    auto secure = Connect(d, true);
    ASSERT_TRUE(secure.ok()) << secure.status();
    auto r = (*secure)->OpenRegion("s");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE((*r)->Read(0, out).ok());
    EXPECT_EQ(out, data);
  }
  {
    // The counter exists again: no override needed from now on.
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir_.path, args));
    auto secure = Connect(d, true);
    ASSERT_TRUE(secure.ok()) << secure.status();
    auto r = (*secure)->OpenRegion("s");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE((*r)->Read(0, out).ok());
    EXPECT_EQ(out, data);
  }
}

}  // namespace
