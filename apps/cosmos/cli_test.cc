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
#include <cstdlib>
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
        "region list", "region delete", "region write", "region read", "region verify",
        "remote region", "remote region read", "completion"}) {
    CliRun r = Cosmos(std::string(verb) + " --help");
    EXPECT_EQ(r.exit_code, 0) << verb;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << verb << ": " << r.out;
  }
  // The local region group names the flag that makes its verbs remote.
  EXPECT_NE(Cosmos("region --help").out.find("--server"), std::string::npos);
}

TEST_F(CliTest, BadWordsAndNumbersAreUsageErrorsNamingThem) {
  ASSERT_EQ(Cosmos("pool create " + pool_ + " --size 4M").exit_code, 0);
  CliRun r = Cosmos("region frobnicate " + pool_);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown command 'frobnicate' for 'cosmos region'; commands: create, list, "
                       "delete, write, read, verify"),
            std::string::npos)
      << r.out;
  r = Cosmos("remote region lst --server 127.0.0.1:1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown command 'lst' for 'cosmos remote region' (did you mean 'list'?)"),
            std::string::npos)
      << r.out;
  for (const std::string& bad :
       {"region create " + pool_ + " a --size 4K --flags -1",
        "region create " + pool_ + " a --size 4K --flags 4294967296",
        "pool create " + dir_ + "/b.pool --size 4M --max-regions -1",
        "region read " + pool_ + " a --offset 18446744073709551616",
        "region read " + pool_ + " a --length 1e3",
        std::string("remote region list --timeout-ms -1"), std::string("bench rpm --concurrency 0"),
        std::string("bench rpm --op scan")}) {
    r = Cosmos(bad);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/b.pool"));
}

// The bash script generated from the command tree is valid bash and its
// function completes verbs, flags (remote ones on the local region verbs
// too) and flag choices.
TEST_F(CliTest, BashCompletionIsValidAndCompletesVerbsAndFlags) {
  const std::string script = dir_ + "/cosmos.bash";
  CliRun gen = Cosmos("completion bash > " + script);
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  CliRun syntax = [&] {
    const std::string cmd = "bash -n " + script + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 512> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int status = pclose(p);
    return CliRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  }();
  ASSERT_EQ(syntax.exit_code, 0) << syntax.out;
  // Runs the completion function for `words` (the last one is being typed).
  auto complete = [&](const std::string& words) {
    const std::string driver = dir_ + "/complete.sh";
    std::FILE* f = std::fopen(driver.c_str(), "w");
    std::fprintf(f,
                 "source '%s'\nCOMP_WORDS=(%s)\nCOMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
                 "_cosmos\necho \"${COMPREPLY[*]}\"\n",
                 script.c_str(), words.c_str());
    std::fclose(f);
    FILE* p = popen(("bash " + driver + " 2>&1").c_str(), "r");
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    pclose(p);
    return out;
  };
  EXPECT_EQ(complete("cosmos reg"), "region\n");
  EXPECT_EQ(complete("cosmos --json po"), "pool\n");
  EXPECT_EQ(complete("cosmos pool ''"), "check create info\n");
  EXPECT_EQ(complete("cosmos region create --si"), "--size\n");
  EXPECT_EQ(complete("cosmos region read POOL r --he"), "--help --hex\n");
  EXPECT_EQ(complete("cosmos region read r --serv"), "--server\n");
  EXPECT_EQ(complete("cosmos region rot"), "rotate-key\n");
  EXPECT_EQ(complete("cosmos --log-level ''"), "trace debug info warn error off\n");
  EXPECT_EQ(complete("cosmos region write POOL r --data"), "--data\n");
}

TEST_F(CliTest, ZshCompletionIsGeneratedFromTheSameTree) {
  CliRun zsh = Cosmos("completion zsh");
  ASSERT_EQ(zsh.exit_code, 0) << zsh.out;
  EXPECT_EQ(zsh.out.rfind("#compdef cosmos\n", 0), 0u) << zsh.out;
  EXPECT_NE(zsh.out.find("\"cosmos region read\") subs=(); opts=("), std::string::npos);
  EXPECT_NE(zsh.out.find("--log-level) compadd -- trace debug info warn error off"),
            std::string::npos);
  if (std::system("command -v zsh >/dev/null 2>&1") == 0) {
    const std::string file = dir_ + "/_cosmos";
    ASSERT_EQ(Cosmos("completion zsh > " + file).exit_code, 0);
    EXPECT_EQ(std::system(("zsh -n " + file).c_str()), 0);
  }
  EXPECT_EQ(Cosmos("completion fish").exit_code, 2);
}

}  // namespace
}  // namespace cosmos::cli
