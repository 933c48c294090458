// Tests for ConfigFile: typed access and clear errors on bad input.
#include "common/config.h"

#include <gtest/gtest.h>

namespace cosmos {
namespace {

TEST(ConfigFile, ReadsTypedValuesAndDefaults) {
  auto c = ConfigFile::Parse(R"(
[server]
port = 7000
address = "127.0.0.1"
busy_poll = true
[[pool]]
path = "/tmp/a.pool"
[[pool]]
path = "/tmp/b.pool"
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c->GetInt("server.port", 1), 7000);
  EXPECT_EQ(*c->GetString("server.address", ""), "127.0.0.1");
  EXPECT_TRUE(*c->GetBool("server.busy_poll", false));
  EXPECT_EQ(*c->GetInt("server.workers", 2), 2);
  ASSERT_EQ(*c->TableArraySize("pool"), 2u);
  auto second = c->TableArrayElement("pool", 1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second->GetString("path", ""), "/tmp/b.pool");
}

TEST(ConfigFile, SyntaxErrorNamesOriginAndLine) {
  auto c = ConfigFile::Parse("a = 1\nb = = 2\n", "test.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("test.toml line 2"), std::string::npos);
}

TEST(ConfigFile, WrongTypeAndRangeAreErrors) {
  auto c = ConfigFile::Parse("port = \"x\"\nworkers = 1000\n", "t.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->GetInt("port", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->GetInt("workers", 1, 1, 64).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->GetString("workers", "").status().code(), StatusCode::kInvalidArgument);
}

TEST(ConfigFile, MissingFileIsNotFound) {
  EXPECT_EQ(ConfigFile::Load("/nonexistent/cosmos.toml").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cosmos
