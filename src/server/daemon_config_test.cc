// Tests of cosmosd configuration parsing.
#include "server/daemon_config.h"

#include <gtest/gtest.h>

namespace cosmos::server {
namespace {

TEST(DaemonConfig, ReadsServerQosAndPools) {
  auto f = ConfigFile::Parse(R"(
[server]
listen = "127.0.0.1"
port = 7500
workers = 3
[qos]
client_ops_per_sec = 1000.0
[[pool]]
name = "fast"
path = "/tmp/a.pool"
size_mb = 32
create = true
[[pool]]
path = "/tmp/b.pool"
)");
  ASSERT_TRUE(f.ok());
  auto c = LoadDaemonConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.port, 7500);
  EXPECT_EQ(c->server.workers, 3u);
  EXPECT_DOUBLE_EQ(c->server.qos.client_ops_per_sec, 1000.0);
  ASSERT_EQ(c->pools.size(), 2u);
  EXPECT_EQ(c->pools[0].size_bytes, 32u << 20);
  EXPECT_TRUE(c->pools[0].create);
  EXPECT_EQ(c->pools[1].name, "b");
}

TEST(DaemonConfig, RejectsBadValuesNamingTheKey) {
  auto f = ConfigFile::Parse("[server]\nworkers = 0\n");
  ASSERT_TRUE(f.ok());
  auto c = LoadDaemonConfig(*f);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("workers"), std::string::npos);
  auto g = ConfigFile::Parse("[[pool]]\nname = \"x\"\n");
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(LoadDaemonConfig(*g).ok());
}

TEST(DaemonConfig, ParsesPoolFlags) {
  auto a = ParsePoolFlag("/var/lib/p0.pool");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->name, "p0");
  auto b = ParsePoolFlag("logs=/x/y.pool,size=128,create,backend=file");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->name, "logs");
  EXPECT_EQ(b->size_bytes, 128u << 20);
  EXPECT_TRUE(b->create);
  EXPECT_EQ(b->backend, "file");
  EXPECT_FALSE(ParsePoolFlag("x,size=0").ok());
  EXPECT_FALSE(ParsePoolFlag("x,bogus").ok());
  EXPECT_FALSE(ParsePoolFlag("=").ok());
}

}  // namespace
}  // namespace cosmos::server
