// Tests for ConfigFile: typed access and clear errors on bad input.
#include "common/config.h"

#include <gtest/gtest.h>

#include "common/edit_distance.h"

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

namespace cosmos {
namespace {

TEST(ConfigFile, CheckKnownKeysNamesLineAndNearestKey) {
  constexpr std::string_view kKnown[] = {"a.port", "a.workers", "b.rate", "item[].path"};
  auto ok = ConfigFile::Parse("[a]\nport = 1\n[[item]]\npath = \"x\"\n[[item]]\npath = \"y\"\n");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->CheckKnownKeys(kKnown).ok());
  auto typo = ConfigFile::Parse("[a]\nport = 1\n\nworkers_ = 2\n", "f.toml");
  ASSERT_TRUE(typo.ok());
  Status s = typo->CheckKnownKeys(kKnown);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "config f.toml line 4: unknown key 'a.workers_' (did you mean 'a.workers'?)");
  auto nested = ConfigFile::Parse("[a.deep]\nport = 1\n", "f.toml");
  ASSERT_TRUE(nested.ok());
  EXPECT_NE(nested->CheckKnownKeys(kKnown).message().find("unknown section [a.deep]"),
            std::string::npos);
  auto inline_table = ConfigFile::Parse("b = { rate = 1, rat = 2 }\n", "f.toml");
  ASSERT_TRUE(inline_table.ok());
  EXPECT_NE(inline_table->CheckKnownKeys(kKnown).message().find("'b.rat'"), std::string::npos);
}

TEST(EditDistance, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("workers", "workrs"), 1u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  constexpr std::string_view kNames[] = {"pool", "region", "remote", "keys"};
  EXPECT_EQ(NearestName("regoin", kNames), "region");
  EXPECT_EQ(NearestName("pol", kNames), "pool");
  EXPECT_EQ(NearestName("x", std::span<const std::string_view>()), "");
}

}  // namespace
}  // namespace cosmos
