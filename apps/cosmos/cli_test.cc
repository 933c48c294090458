// Tests for the admin CLI: the built binary end to end (size parsing is
// tested with the one parser, src/common/size_test.cc)
// (human and JSON output, --help on every verb, errors exit non-zero).
#include "cli.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cosmos/client.h"

namespace cosmos::cli {
namespace {

struct CliRun {
  int exit_code;
  std::string out;
};

// Runs the cosmos binary with `args` (stdout captured, stderr merged).
CliRun Cosmos(const std::string& args) {
  const std::string cmd = std::string(COSMOS_CLI_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cosmos_cli_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    pool_ = dir_ + "/cli.pool";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, pool_;
};

TEST_F(CliTest, PoolAndRegionLifecycleWorksInHumanAndJsonForm) {
  ASSERT_EQ(Cosmos("pool create " + pool_ + " --size 4M").exit_code, 0);
  ASSERT_EQ(Cosmos("region create " + pool_ + " log --size 64K").exit_code, 0);
  CliRun w = Cosmos("region write " + pool_ + " log --offset 10 --data hello");
  ASSERT_EQ(w.exit_code, 0) << w.out;
  CliRun r = Cosmos("region read " + pool_ + " log --offset 10 --length 5");
  EXPECT_EQ(r.out, "hello\n");
  CliRun list = Cosmos("region list " + pool_);
  EXPECT_NE(list.out.find("log"), std::string::npos);
  CliRun info = Cosmos("--json pool info " + pool_);
  ASSERT_EQ(info.exit_code, 0) << info.out;
  auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["region_count"], 1);
  EXPECT_EQ(j["format_version"], 1);
  CliRun listj = Cosmos("region list " + pool_ + " --json");
  auto lj = nlohmann::json::parse(listj.out);
  EXPECT_EQ(lj["regions"][0]["name"], "log");
  EXPECT_EQ(Cosmos("pool check " + pool_).exit_code, 0);
  EXPECT_EQ(Cosmos("region delete " + pool_ + " log").exit_code, 0);
  EXPECT_NE(Cosmos("region list " + pool_).out.find("0 region(s)"), std::string::npos);
}

TEST_F(CliTest, ErrorsExitNonZeroWithTheStatusMessage) {
  CliRun missing = Cosmos("pool info " + pool_);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("not_found"), std::string::npos) << missing.out;
  EXPECT_NE(missing.out.find(pool_), std::string::npos);
  ASSERT_EQ(Cosmos("pool create " + pool_ + " --size 4M").exit_code, 0);
  CliRun dup = Cosmos("pool create " + pool_ + " --size 4M");
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_NE(dup.out.find("already_exists"), std::string::npos);
  ASSERT_EQ(Cosmos("region create " + pool_ + " a --size 4K").exit_code, 0);
  CliRun oob = Cosmos("region write " + pool_ + " a --offset 4090 --data 0123456789");
  EXPECT_EQ(oob.exit_code, 1);
  EXPECT_NE(oob.out.find("out_of_range"), std::string::npos) << oob.out;
  CliRun json_err = Cosmos("--json region delete " + pool_ + " nope");
  EXPECT_EQ(json_err.exit_code, 1);
  EXPECT_NE(json_err.out.find("\"code\": \"not_found\""), std::string::npos) << json_err.out;
}

TEST_F(CliTest, CorruptAndReadOnlyPoolsFailWithTheirStatus) {
  ASSERT_EQ(Cosmos("pool create " + pool_ + " --size 4M").exit_code, 0);
  ASSERT_EQ(Cosmos("region create " + pool_ + " a --size 4K").exit_code, 0);
  // A read-only file: writes are refused, inspection works.
  ASSERT_EQ(chmod(pool_.c_str(), 0444), 0);
  CliRun ro = Cosmos("region create " + pool_ + " b --size 4K");
  EXPECT_EQ(ro.exit_code, 1);
  EXPECT_NE(ro.out.find("permission_denied"), std::string::npos) << ro.out;
  EXPECT_EQ(Cosmos("pool check " + pool_).exit_code, 0);
  EXPECT_EQ(Cosmos("pool info --read-only " + pool_).exit_code, 0);
  ASSERT_EQ(chmod(pool_.c_str(), 0644), 0);
  // Flip one byte of the region table entry: check names the structure.
  FILE* f = std::fopen(pool_.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, 4096 + 60, SEEK_SET);
  const int c = std::fgetc(f);
  std::fseek(f, 4096 + 60, SEEK_SET);
  std::fputc(c ^ 0x40, f);
  std::fclose(f);
  CliRun bad = Cosmos("pool check " + pool_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("region table entry 0: checksum mismatch"), std::string::npos) << bad.out;
}

TEST(CliRights, LettersAndWordsParseToAccessBits) {
  EXPECT_EQ(cosmos::cli::ParseRights("r").value_or(0), cosmos::kAccessRead);
  EXPECT_EQ(cosmos::cli::ParseRights("wr").value_or(0), cosmos::kAccessRead | cosmos::kAccessWrite);
  EXPECT_EQ(cosmos::cli::ParseRights("rwa").value_or(0), 7);
  EXPECT_EQ(cosmos::cli::ParseRights("read,admin").value_or(0),
            cosmos::kAccessRead | cosmos::kAccessAdmin);
  EXPECT_EQ(cosmos::cli::ParseRights("write").value_or(0), cosmos::kAccessWrite);
  for (const char* bad : {"", "x", "read,", ",read", "read;write", "rwx", "none"}) {
    EXPECT_EQ(cosmos::cli::ParseRights(bad).status().code(), cosmos::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(cosmos::cli::RightsName(5), "r-a");
  EXPECT_EQ(cosmos::cli::RightsName(2), "-w-");
}

TEST(CliHelp, EveryVerbHasHelp) {
  for (const char* verb :
       {"", "pool", "pool create", "pool info", "pool check", "region", "region create",
        "region list", "region delete", "region write", "region read"}) {
    CliRun r = Cosmos(std::string(verb) + " --help");
    EXPECT_EQ(r.exit_code, 0) << verb;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << verb << ": " << r.out;
  }
}

}  // namespace
}  // namespace cosmos::cli
