// Tests of the logger: level validation, UTC timestamps, files, JSON lines,
// reopening after rotation.
#include "common/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace cosmos::log {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cosmos_log_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ASSERT_TRUE(Configure({.level = "info", .file = "", .format = "text"}).ok());
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST(LogLevel, OneValidationWithOneMessage) {
  for (const char* ok : {"trace", "debug", "info", "warn", "error", "off"}) {
    EXPECT_TRUE(ValidateLevel(ok).ok()) << ok;
  }
  Status s = ValidateLevel("bogus");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "unknown log level 'bogus' (expected trace, debug, info, warn, error or off)");
  EXPECT_FALSE(ValidateLevel("warning").ok());
  EXPECT_FALSE(SetLevel("bogus"));
  EXPECT_FALSE(ValidateFormat("xml").ok());
  EXPECT_TRUE(ValidateFormat("json").ok());
}

TEST_F(LogTest, WritesUtcTextLinesToAFile) {
  const std::string path = dir_ + "/a.log";
  ASSERT_TRUE(Configure({.level = "info", .file = path, .format = "text"}).ok());
  EXPECT_EQ(CurrentFile(), path);
  EXPECT_EQ(LevelName(), "info");
  COSMOS_LOG_INFO("hello {}", 42);
  COSMOS_LOG_DEBUG("not shown");
  const std::string text = Slurp(path);
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] \[info\] hello 42\n$)")))
      << text;
}

TEST_F(LogTest, JsonLinesEscapeTheMessage) {
  const std::string path = dir_ + "/j.log";
  ASSERT_TRUE(Configure({.level = "debug", .file = path, .format = "json"}).ok());
  COSMOS_LOG_WARN("path \"{}\"\tback\\slash", "/x");
  const std::string text = Slurp(path);
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"warning",)"
                       R"("pid":\d+,"msg":"path \\"/x\\"\\tback\\\\slash"\}\n$)")))
      << text;
}

TEST_F(LogTest, ReopenFollowsARotatedFile) {
  const std::string path = dir_ + "/r.log";
  ASSERT_TRUE(Configure({.level = "info", .file = path, .format = "text"}).ok());
  COSMOS_LOG_INFO("before rotation");
  std::filesystem::rename(path, path + ".1");
  COSMOS_LOG_INFO("still the old file");
  ASSERT_TRUE(Reopen().ok());
  COSMOS_LOG_INFO("after rotation");
  EXPECT_NE(Slurp(path + ".1").find("still the old file"), std::string::npos);
  const std::string now = Slurp(path);
  EXPECT_NE(now.find("after rotation"), std::string::npos);
  EXPECT_EQ(now.find("before rotation"), std::string::npos);
}

TEST_F(LogTest, BadSettingsChangeNothing) {
  const std::string path = dir_ + "/k.log";
  ASSERT_TRUE(Configure({.level = "info", .file = path, .format = "text"}).ok());
  EXPECT_EQ(Configure({.level = "bogus", .file = "", .format = "text"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Configure({.level = "", .file = dir_ + "/no/such/dir/\x01/../x", .format = "pdf"}).code(),
      StatusCode::kInvalidArgument);
  Status io = Configure({.level = "", .file = "/proc/cosmos/no.log", .format = "text"});
  EXPECT_EQ(io.code(), StatusCode::kIoError) << io;
  EXPECT_EQ(CurrentFile(), path);
  EXPECT_EQ(LevelName(), "info");
}

}  // namespace
}  // namespace cosmos::log
