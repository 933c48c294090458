// Tests of cosmosd configuration parsing.
#include "server/daemon_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>

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

TEST(DaemonConfig, ReadsAndBoundsTheMtu) {
  auto dflt = ConfigFile::Parse("[server]\nport = 7500\n");
  ASSERT_TRUE(dflt.ok());
  auto d = LoadDaemonConfig(*dflt);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->server.mtu, 1472u);
  auto jumbo = ConfigFile::Parse("[server]\nmtu = 8972\n");
  ASSERT_TRUE(jumbo.ok());
  auto j = LoadDaemonConfig(*jumbo);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->server.mtu, 8972u);
  for (const char* bad : {"[server]\nmtu = 100\n", "[server]\nmtu = 9001\n"}) {
    auto f = ConfigFile::Parse(bad);
    ASSERT_TRUE(f.ok());
    auto c = LoadDaemonConfig(*f);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("server.mtu"), std::string::npos) << c.status();
  }
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

TEST(DaemonConfig, PoolFlagTakesTheCommonSizeGrammar) {
  for (const char* size : {"64M", "64MiB", "64mb", "67108864"}) {
    auto p = ParsePoolFlag(std::string("/x/p.pool,size=") + size);
    ASSERT_TRUE(p.ok()) << size << ": " << p.status();
    EXPECT_EQ(p->size_bytes, 64u << 20) << size;
  }
  EXPECT_EQ(ParsePoolFlag("/x/p.pool,size=2G")->size_bytes, 2ull << 30);
  // The old bare MiB count still works (deprecated): no pool is below 1M.
  EXPECT_EQ(ParsePoolFlag("/x/p.pool,size=16")->size_bytes, 16u << 20);
  auto bad = ParsePoolFlag("/x/p.pool,size=64Q");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown unit 'Q'"), std::string::npos) << bad.status();
  EXPECT_NE(bad.status().message().find("--pool"), std::string::npos) << bad.status();
  EXPECT_FALSE(ParsePoolFlag("/x/p.pool,size=512K").ok());  // below 1M
  EXPECT_FALSE(ParsePoolFlag("/x/p.pool,size=-1").ok());
}

TEST(DaemonConfig, PoolSizeKeyTakesSizeStringsBytesAndTheOldMiBKey) {
  auto f = ConfigFile::Parse(R"(
[[pool]]
path = "/a.pool"
size = "128M"
[[pool]]
path = "/b.pool"
size = 2097152
[[pool]]
path = "/c.pool"
size_mb = 32
[[pool]]
path = "/d.pool"
)");
  ASSERT_TRUE(f.ok()) << f.status();
  auto c = LoadDaemonConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->pools.size(), 4u);
  EXPECT_EQ(c->pools[0].size_bytes, 128u << 20);
  EXPECT_EQ(c->pools[1].size_bytes, 2u << 20);
  EXPECT_EQ(c->pools[2].size_bytes, 32u << 20);
  EXPECT_EQ(c->pools[3].size_bytes, 64u << 20);
  const std::pair<const char*, const char*> bad[] = {
      {"size = 16", "at least 1M"},  // bytes, not MiB: refused, not a 16-byte pool
      {"size = \"16Q\"", "unknown unit"},
      {"size = \"64M\"\nsize_mb = 64", "not both"},
      {"size = true", "size"},
  };
  for (const auto& [line, want] : bad) {
    auto g = ConfigFile::Parse(std::string("[[pool]]\npath = \"/p\"\n") + line + "\n");
    ASSERT_TRUE(g.ok()) << line;
    auto d = LoadDaemonConfig(*g);
    ASSERT_FALSE(d.ok()) << line;
    EXPECT_NE(d.status().message().find(want), std::string::npos) << line << ": " << d.status();
  }
}

// The typos of issue 17: each used to start cosmosd with defaults, silently.
TEST(DaemonConfig, RefusesUnknownKeysAndSectionsNamingLineAndNearestKey) {
  const struct {
    const char* text;
    const char* want;
  } cases[] = {
      {"[server]\nport = 7500\nworkrs = 4\n",
       "line 3: unknown key 'server.workrs' (did you mean 'server.workers'?)"},
      {"[server]\nport = 7500\n\n[qoss]\nclient_ops_per_sec = 1.0\n",
       "line 4: unknown section [qoss] (did you mean [qos]?)"},
      {"[qos]\nburst_second = 2.0\n",
       "line 2: unknown key 'qos.burst_second' (did you mean 'qos.burst_seconds'?)"},
      {"[[pool]]\npath = \"/p\"\ncreat = true\n",
       "line 3: unknown key 'pool[].creat' (did you mean 'pool[].create'?)"},
      {"[[pools]]\npath = \"/p\"\n", "line 1: unknown section [[pools]] (did you mean [[pool]]?)"},
      {"log_level = \"debug\"\n",
       "line 1: unknown key 'log_level' (did you mean 'server.log_level'?)"},
      {"[qos]\nport = 7000\n", "line 2: unknown key 'qos.port' (did you mean 'server.port'?)"},
  };
  for (const auto& c : cases) {
    auto f = ConfigFile::Parse(c.text, "/etc/cosmosd.toml");
    ASSERT_TRUE(f.ok()) << c.text;
    auto d = LoadDaemonConfig(*f);
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("config /etc/cosmosd.toml " + std::string(c.want)),
              std::string::npos)
        << d.status();
  }
}

TEST(DaemonConfig, AcceptsEveryDocumentedKey) {
  auto f = ConfigFile::Parse(R"(
[server]
listen = "127.0.0.1"
port = 7410
workers = 2
flushers = 2
mtu = 1472
busy_poll = false
idle_spin_us = 50
log_level = "info"
log_file = "/var/log/cosmosd.log"
log_format = "json"
platform_keys = "/k"
enclave_state = "/k/state"
allow = ["a.pub"]
secure_block_size = 4096
require_secure = false
freshness = "strict"
relaxed_window = 8
counter_delay_ms = 20
secure_flushers = 16
[qos]
client_bytes_per_sec = 0.0
client_ops_per_sec = 0.0
region_bytes_per_sec = 0.0
region_ops_per_sec = 0.0
burst_seconds = 1.0
[[pool]]
name = "main"
path = "/p.pool"
size = "64M"
backend = "file"
create = true
)");
  ASSERT_TRUE(f.ok()) << f.status();
  auto c = LoadDaemonConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->log_file, "/var/log/cosmosd.log");
  EXPECT_EQ(c->log_format, "json");
}

TEST(DaemonConfig, ReadsSecureModeKeys) {
  auto f = ConfigFile::Parse(R"(
[server]
platform_keys = "/etc/cosmos/node"
allow = ["/etc/cosmos/alice.pub", "/etc/cosmos/bob.pub"]
enclave_state = "/var/lib/cosmos/state"
secure_block_size = 8192
require_secure = true
)");
  ASSERT_TRUE(f.ok());
  auto c = LoadDaemonConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->secure.platform_keys, "/etc/cosmos/node");
  EXPECT_EQ(c->secure.allow,
            (std::vector<std::string>{"/etc/cosmos/alice.pub", "/etc/cosmos/bob.pub"}));
  EXPECT_EQ(c->secure.enclave_state, "/var/lib/cosmos/state");
  EXPECT_EQ(c->secure.block_size, 8192u);
  EXPECT_TRUE(c->secure.require_secure);
  EXPECT_TRUE(ValidateSecureConfig(c->secure).ok());

  // A single string is a one-element list; an empty array is no clients.
  auto g = ConfigFile::Parse("[server]\nplatform_keys = \"k\"\nallow = \"a.pub\"\n");
  ASSERT_TRUE(g.ok());
  auto d = LoadDaemonConfig(*g);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->secure.allow, std::vector<std::string>{"a.pub"});
  auto h = ConfigFile::Parse("[server]\nallow = []\n");
  ASSERT_TRUE(h.ok());
  auto e = LoadDaemonConfig(*h);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->secure.allow.empty());
}

TEST(DaemonConfig, SecureModeDefaultsArePlain) {
  auto f = ConfigFile::Parse("[server]\nport = 7000\n");
  ASSERT_TRUE(f.ok());
  auto c = LoadDaemonConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->secure.platform_keys.empty());
  EXPECT_TRUE(c->secure.allow.empty());
  EXPECT_EQ(c->secure.block_size, 4096u);
  EXPECT_FALSE(c->secure.require_secure);
  EXPECT_TRUE(ValidateSecureConfig(c->secure).ok());
}

TEST(DaemonConfig, RejectsBadSecureValuesNamingTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"secure_block_size = 3000", "secure_block_size"},  // not a power of two
      {"secure_block_size = 256", "secure_block_size"},   // below 512
      {"secure_block_size = 131072", "secure_block_size"},
      {"secure_block_size = \"4096\"", "secure_block_size"},
      {"require_secure = \"yes\"", "require_secure"},
      {"platform_keys = 5", "platform_keys"},
      {"enclave_state = false", "enclave_state"},
      {"allow = 7", "allow"},
      {"allow = [\"a.pub\", 3]", "allow"},
      {"allow = [\"\"]", "allow"},
  };
  for (const auto& [line, key] : cases) {
    auto f = ConfigFile::Parse(std::string("[server]\n") + line + "\n");
    ASSERT_TRUE(f.ok()) << line;
    auto c = LoadDaemonConfig(*f);
    ASSERT_FALSE(c.ok()) << line;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << line;
    EXPECT_NE(c.status().message().find(key), std::string::npos) << line << ": " << c.status();
  }
}

TEST(DaemonConfig, ReadsFreshnessKeysAndSelectsTheRegionPolicy) {
  auto f = ConfigFile::Parse(R"(
[server]
platform_keys = "/k"
freshness = "relaxed"
relaxed_window = 32
counter_delay_ms = 5
secure_flushers = 40
)");
  ASSERT_TRUE(f.ok());
  auto c = LoadDaemonConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->secure.freshness, "relaxed");
  EXPECT_EQ(c->secure.relaxed_window, 32u);
  EXPECT_EQ(c->secure.counter_delay_ms, 5u);
  EXPECT_EQ(c->server.secure_flushers, 40u);
  EXPECT_FALSE(c->secure.accept_counter_reset);
  ASSERT_TRUE(ValidateSecureConfig(c->secure).ok());
  sec::RegionPolicy p = RegionPolicyFor(c->secure);
  EXPECT_EQ(p.counter_mode, sec::CounterMode::kRelaxed);
  EXPECT_EQ(p.relaxed_window, 32u);
  EXPECT_FALSE(p.accept_counter_reset);
  const std::string d = DescribeFreshness(c->secure);
  EXPECT_NE(d.find("relaxed"), std::string::npos) << d;
  EXPECT_NE(d.find("rollback window 32"), std::string::npos) << d;
  EXPECT_NE(d.find("5 ms"), std::string::npos) << d;
  EXPECT_NE(d.find("simulated"), std::string::npos) << d;

  // Defaults: strict, window 8 (unused), 20 ms, 16 secure flushers.
  auto g = ConfigFile::Parse("[server]\nplatform_keys = \"/k\"\n");
  ASSERT_TRUE(g.ok());
  auto e = LoadDaemonConfig(*g);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->secure.freshness, "strict");
  EXPECT_EQ(e->secure.counter_delay_ms, 20u);
  EXPECT_EQ(e->server.secure_flushers, 16u);
  EXPECT_EQ(RegionPolicyFor(e->secure).counter_mode, sec::CounterMode::kStrict);
  EXPECT_NE(DescribeFreshness(e->secure).find("rollback window 0"), std::string::npos);
  SecureConfig over = e->secure;
  over.accept_counter_reset = true;  // the flag; not a file key
  EXPECT_TRUE(RegionPolicyFor(over).accept_counter_reset);
}

TEST(DaemonConfig, RejectsBadFreshnessValuesNamingTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"freshness = \"eventual\"", "freshness"},
      {"freshness = 1", "freshness"},
      {"relaxed_window = 0", "relaxed_window"},
      {"relaxed_window = 2000000", "relaxed_window"},
      {"counter_delay_ms = -1", "counter_delay_ms"},
      {"counter_delay_ms = 60001", "counter_delay_ms"},
      {"secure_flushers = 0", "secure_flushers"},
      {"accept_counter_reset = true", "accept_counter_reset"},
  };
  for (const auto& [line, key] : cases) {
    auto f = ConfigFile::Parse(std::string("[server]\n") + line + "\n");
    ASSERT_TRUE(f.ok()) << line;
    auto c = LoadDaemonConfig(*f);
    ASSERT_FALSE(c.ok()) << line;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << line;
    EXPECT_NE(c.status().message().find(key), std::string::npos) << line << ": " << c.status();
  }
  SecureConfig s;
  s.freshness = "lazy";
  EXPECT_EQ(ValidateSecureConfig(s).code(), StatusCode::kInvalidArgument);
  s = {};
  s.relaxed_window = 0;
  EXPECT_EQ(ValidateSecureConfig(s).code(), StatusCode::kInvalidArgument);
  s = {};
  s.counter_delay_ms = 70'000;
  EXPECT_EQ(ValidateSecureConfig(s).code(), StatusCode::kInvalidArgument);
}

TEST(DaemonConfig, SecureSettingsNeedPlatformKeys) {
  SecureConfig s;
  s.allow = {"a.pub"};
  EXPECT_EQ(ValidateSecureConfig(s).code(), StatusCode::kInvalidArgument);
  s = {};
  s.require_secure = true;
  Status st = ValidateSecureConfig(s);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("require_secure"), std::string::npos);
  s = {};
  s.enclave_state = "/x";
  EXPECT_FALSE(ValidateSecureConfig(s).ok());
  s = {};
  s.block_size = 1000;
  EXPECT_FALSE(ValidateSecureConfig(s).ok());
  s = {};
  s.platform_keys = "/k";
  s.allow = {"a.pub"};
  s.enclave_state = "/x";
  s.require_secure = true;
  s.block_size = 65536;
  EXPECT_TRUE(ValidateSecureConfig(s).ok());
}

TEST(DaemonConfig, StartChecksRefuseBadListenPortsAndPoolsBeforeAnythingIsCreated) {
  DaemonConfig cfg;
  cfg.pools.push_back(PoolSpec{"main", "/nonexistent/main.pool"});
  EXPECT_TRUE(ValidateStartConfig(cfg).ok());
  for (const char* bad : {"300.1.2.3", "localhost", "", "10.0.0.1:7410", "[::1]", "::1:7410:x"}) {
    DaemonConfig c = cfg;
    c.server.listen_ip = bad;
    Status s = ValidateStartConfig(c);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("server.listen"), std::string::npos) << s.message();
  }
  for (const char* good : {"0.0.0.0", "127.0.0.1", "::", "::1"}) {  // IPv6 since issue 15
    DaemonConfig c = cfg;
    c.server.listen_ip = good;
    EXPECT_TRUE(ValidateStartConfig(c).ok()) << good;
  }
  DaemonConfig ports = cfg;
  ports.server.port = 65535;
  ports.server.workers = 2;
  EXPECT_NE(ValidateStartConfig(ports).message().find("65535"), std::string::npos);
  DaemonConfig none = cfg;
  none.pools.clear();
  EXPECT_FALSE(ValidateStartConfig(none).ok());
  DaemonConfig twice = cfg;
  twice.pools.push_back(twice.pools[0]);
  EXPECT_NE(ValidateStartConfig(twice).message().find("used twice"), std::string::npos);
  DaemonConfig backend = cfg;
  backend.pools[0].backend = "nvme";
  EXPECT_FALSE(ValidateStartConfig(backend).ok());
}

TEST(DaemonConfig, MetricsListenIsReadFromTheFileAndCheckedBeforeStart) {
  auto f = ConfigFile::Parse(R"(
[server]
metrics_listen = "127.0.0.1:9464"
)");
  ASSERT_TRUE(f.ok());
  auto c = LoadDaemonConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9464");
  c->pools.push_back(PoolSpec{"main", "/nonexistent/main.pool"});
  EXPECT_TRUE(ValidateStartConfig(*c).ok());
  for (const char* good : {"0.0.0.0:9464", "[::1]:9464", "127.0.0.1:0"}) {
    DaemonConfig d = *c;
    d.metrics_listen = good;
    EXPECT_TRUE(ValidateStartConfig(d).ok()) << good;
  }
  for (const char* bad : {"9464", "localhost:9464", "127.0.0.1", "127.0.0.1:70000", "::1:9464"}) {
    DaemonConfig d = *c;
    d.metrics_listen = bad;
    Status s = ValidateStartConfig(d);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("server.metrics_listen"), std::string::npos) << s.message();
  }
}

TEST(DaemonConfig, FailedOpenRemovesThePoolFilesItCreated) {
  char tmpl[] = "/tmp/cosmos_daemon_config_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  PoolSpec fresh{"fresh", dir + "/fresh.pool", 16u << 20, "auto", true};
  PoolSpec missing{"missing", dir + "/missing.pool", 16u << 20, "auto", false};
  auto opened = OpenPools({fresh, missing});
  EXPECT_EQ(opened.status().code(), StatusCode::kNotFound) << opened.status();
  EXPECT_FALSE(std::filesystem::exists(fresh.path));
  // On success the created files are listed; RemovePoolFiles takes them away.
  std::vector<std::string> created;
  {
    auto ok = OpenPools({fresh}, &created);
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_EQ(created, std::vector<std::string>{fresh.path});
  }
  RemovePoolFiles(created);
  EXPECT_FALSE(std::filesystem::exists(fresh.path));
  std::filesystem::remove_all(dir);
}

// Relative paths in a config file resolve against the file's directory, not
// the daemon's working directory; absolute ones stay as written.
TEST(DaemonConfig, RelativePathsResolveAgainstTheConfigFilesDirectory) {
  char tmpl[] = "/tmp/cosmos_cfgdir_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::filesystem::create_directories(dir + "/etc");
  const std::string path = dir + "/etc/cosmosd.toml";
  FILE* out = std::fopen(path.c_str(), "w");
  ASSERT_NE(out, nullptr);
  std::fputs(R"([server]
log_file = "../log/cosmosd.log"
platform_keys = "node"
enclave_state = "/var/lib/cosmos/state"
allow = ["clients/alice.pub", "/abs/bob.pub"]
[[pool]]
path = "pools/main.pool"
)",
             out);
  std::fclose(out);
  auto f = ConfigFile::Load(path);
  ASSERT_TRUE(f.ok()) << f.status();
  auto c = LoadDaemonConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->log_file, dir + "/log/cosmosd.log");
  EXPECT_EQ(c->secure.platform_keys, dir + "/etc/node");
  EXPECT_EQ(c->secure.enclave_state, "/var/lib/cosmos/state");
  ASSERT_EQ(c->secure.allow.size(), 2u);
  EXPECT_EQ(c->secure.allow[0], dir + "/etc/clients/alice.pub");
  EXPECT_EQ(c->secure.allow[1], "/abs/bob.pub");
  ASSERT_EQ(c->pools.size(), 1u);
  EXPECT_EQ(c->pools[0].path, dir + "/etc/pools/main.pool");
  EXPECT_EQ(c->pools[0].name, "main");  // BaseName drops the extension
  // The same text parsed from a string (no file) keeps the paths as written.
  auto g = ConfigFile::Parse("[[pool]]\npath = \"pools/main.pool\"\n");
  ASSERT_TRUE(g.ok());
  auto d = LoadDaemonConfig(*g);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->pools[0].path, "pools/main.pool");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cosmos::server
