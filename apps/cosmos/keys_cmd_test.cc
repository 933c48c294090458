// Tests for `cosmos keys`: the built binary creates loadable platform keys and
// client credentials with private files at 0600, refuses to overwrite without
// --force, rejects bad client names, and prints JSON with --json.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "sec/key_files.h"

namespace cosmos::cli {
namespace {

struct CliRun {
  int exit_code;
  std::string out;
};

// Runs the cosmos binary with `args` (stdout captured, stderr merged unless
// `merge_stderr` is false).
CliRun Cosmos(const std::string& args, bool merge_stderr = true) {
  const std::string cmd =
      std::string(COSMOS_CLI_BINARY) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

class KeysCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cosmos_keys_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(KeysCmdTest, PlatformCreatesLoadableKeysWithPrivateFilesAt0600) {
  const std::string d = dir_ + "/node";
  CliRun r = Cosmos("keys platform " + d);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("SIMULATED"), std::string::npos) << r.out;
  EXPECT_EQ(ModeOf(d + "/platform.key"), 0600u);
  EXPECT_EQ(ModeOf(d + "/sealing.secret"), 0600u);
  EXPECT_TRUE(sec::LoadSigningKey(d + "/platform.key", sec::KeyKind::kPlatformPrivate).ok());
  auto policy = sec::LoadAttestationPolicy(d + "/platform.pub", d + "/measurement");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_TRUE(sec::ReadKeyFile(d + "/sealing.secret", sec::KeyKind::kSealingSecret).ok());
}

TEST_F(KeysCmdTest, PlatformRefusesToOverwriteWithoutForce) {
  const std::string d = dir_ + "/node";
  ASSERT_EQ(Cosmos("keys platform " + d).exit_code, 0);
  auto before = sec::LoadPublicKey(d + "/platform.pub", sec::KeyKind::kPlatformPublic);
  ASSERT_TRUE(before.ok());
  CliRun again = Cosmos("keys platform " + d);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.out.find("exists"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("--force replaces it"), std::string::npos) << again.out;
  auto same = sec::LoadPublicKey(d + "/platform.pub", sec::KeyKind::kPlatformPublic);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *before);
  ASSERT_EQ(Cosmos("keys platform " + d + " --force").exit_code, 0);
  auto fresh = sec::LoadPublicKey(d + "/platform.pub", sec::KeyKind::kPlatformPublic);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(*fresh, *before);
}

TEST_F(KeysCmdTest, ClientCreatesCredentialsAndReportsThemAsJson) {
  CliRun r = Cosmos("--json keys client " + dir_ + " alice", /*merge_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["name"], "alice");
  EXPECT_EQ(j["client_public"], dir_ + "/alice.pub");
  EXPECT_EQ(j["client_public_key"].get<std::string>().size(), 64u);
  EXPECT_EQ(ModeOf(dir_ + "/alice.key"), 0600u);
  auto kp = sec::LoadSigningKey(dir_ + "/alice.key", sec::KeyKind::kClientPrivate);
  auto pub = sec::LoadPublicKey(dir_ + "/alice.pub", sec::KeyKind::kClientPublic);
  ASSERT_TRUE(kp.ok());
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(kp->public_key, *pub);
  EXPECT_NE(Cosmos("keys client " + dir_ + " alice").exit_code, 0);
  EXPECT_EQ(Cosmos("keys client " + dir_ + " alice --force").exit_code, 0);
}

TEST_F(KeysCmdTest, BadClientNameAndMissingArgumentsFail) {
  CliRun bad = Cosmos("--json keys client " + dir_ + " a/b", /*merge_stderr=*/false);
  EXPECT_NE(bad.exit_code, 0);
  auto j = nlohmann::json::parse(bad.out);
  EXPECT_EQ(j["error"]["code"], "invalid_argument");
  EXPECT_NE(Cosmos("keys client " + dir_).exit_code, 0);
  EXPECT_NE(Cosmos("keys").exit_code, 0);
}

TEST_F(KeysCmdTest, HelpWorksOnEveryVerb) {
  for (const char* verb : {"keys", "keys platform", "keys client"}) {
    CliRun r = Cosmos(std::string(verb) + " --help");
    EXPECT_EQ(r.exit_code, 0) << verb;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << verb << ": " << r.out;
  }
}

}  // namespace
}  // namespace cosmos::cli
