// cosmos-kv on a region of a real cosmosd process, secure (simulated
// enclave) and plain: redis-cli commands, restarts of cosmos-kv and of
// cosmosd with the data still there, no written plaintext in the node's pool
// file, remote failures reported as RESP errors (never a false OK), and a
// SIGKILL crash test that also kills cosmosd.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>

#include "kv_crash_util.h"
#include "kv_test_util.h"
#include "rpm_harness.h"
#include "sec/key_files.h"

namespace cosmos::kv::testing {
namespace {

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class KvRemote : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir_.path + "/node").ok());
    ASSERT_TRUE(cosmos::sec::GenerateClientCredentials(dir_.path + "/clients", "kv").ok());
    pool_ = dir_.path + "/node.pool";
  }

  // Starts (or restarts) cosmosd on the same pool, secure mode enabled.
  bool StartDaemon(rpm_test::Daemon& d) {
    return d.Start(dir_.path, {"--listen", "127.0.0.1", "--workers", "2", "--pool",
                               "main=" + pool_ + ",size=64,create", "--platform-keys",
                               dir_.path + "/node", "--allow", dir_.path + "/clients/kv.pub"});
  }

  // cosmos-kv flags for a region on `d`; secure unless `plain`.
  std::vector<std::string> KvArgs(const rpm_test::Daemon& d, const std::string& region,
                                  bool plain = false) {
    std::vector<std::string> a = {
        "--backend", "remote",        "--server", d.address(),           "--region",
        region,      "--region-size", "16mb",     "--remote-timeout-ms", "3000"};
    if (!plain) {
      for (const std::string& s : {std::string("--platform-pub"), dir_.path + "/node/platform.pub",
                                   std::string("--measurement"), dir_.path + "/node/measurement",
                                   std::string("--client-key"), dir_.path + "/clients/kv.key"}) {
        a.push_back(s);
      }
    }
    return a;
  }

  rpm_test::TempDir dir_;
  std::string pool_;
};

std::string InfoField(int port, const std::string& field) {
  const std::string info = RedisCli(port, "INFO");
  const size_t p = info.find(field + ":");
  if (p == std::string::npos) return "<missing " + field + ">";
  const size_t e = info.find_first_of("\r\n", p);
  return info.substr(p + field.size() + 1, e - p - field.size() - 1);
}

TEST_F(KvRemote, SecureRegionThroughRedisCliSurvivesRestartsWithoutPlaintextOnTheNode) {
  const std::string secret = "COSMOS-KV-SECRET-VALUE-7f3a9c";
  const std::string secret_key = "cosmos-kv-secret-key-51b2";
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    KvServer kv("", KvArgs(d, "kv"));
    ASSERT_TRUE(kv.Start());
    const int p = kv.port();
    EXPECT_EQ(RedisCli(p, "SET " + secret_key + " " + secret), "OK");
    EXPECT_EQ(RedisCli(p, "GET " + secret_key), "\"" + secret + "\"");
    EXPECT_EQ(RedisCli(p, "INCR counter"), "(integer) 1");
    EXPECT_EQ(RedisCli(p, "INCRBY counter 41"), "(integer) 42");
    EXPECT_EQ(RedisCli(p, "SET gone soon"), "OK");
    EXPECT_EQ(RedisCli(p, "DEL gone"), "(integer) 1");
    EXPECT_EQ(RedisCli(p, "MSET m1 one m2 two"), "OK");
    EXPECT_EQ(RedisCli(p, "APPEND m1 -more"), "(integer) 8");
    EXPECT_EQ(RedisCli(p, "EXISTS m1 m2 gone"), "(integer) 2");
    EXPECT_EQ(RedisCli(p, "DBSIZE"), "(integer) 4");
    // INFO tells the truth about where the data is and how it is protected.
    EXPECT_EQ(InfoField(p, "cosmos_storage_backend"),
              "remote " + d.address() + " region kv (secure, simulated enclave)");
    EXPECT_EQ(InfoField(p, "cosmos_durability_level"), "page");
    const std::string mode = InfoField(p, "cosmos_security_mode");
    EXPECT_EQ(mode.rfind("secure-remote (AES-GCM regions", 0), 0u) << mode;
    EXPECT_NE(mode.find("simulated enclave: no hardware isolation"), std::string::npos) << mode;

    // Restart cosmos-kv alone (clean stop): the index is rebuilt from the
    // remote log.
    EXPECT_EQ(WEXITSTATUS(kv.Kill(SIGTERM)), 0);
    kv.set_extra(KvArgs(d, "kv"));
    ASSERT_TRUE(kv.Start());
    EXPECT_EQ(RedisCli(kv.port(), "GET " + secret_key), "\"" + secret + "\"");
    EXPECT_EQ(RedisCli(kv.port(), "GET counter"), "\"42\"");
    EXPECT_EQ(RedisCli(kv.port(), "SET after-restart yes"), "OK");
    kv.Kill(SIGTERM);
    EXPECT_EQ(WEXITSTATUS(d.Stop(SIGTERM)), 0);
  }
  {
    // Restart cosmosd (new port) and cosmos-kv: everything is still there.
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    KvServer kv("", KvArgs(d, "kv"));
    ASSERT_TRUE(kv.Start());
    const int p = kv.port();
    EXPECT_EQ(RedisCli(p, "GET " + secret_key), "\"" + secret + "\"");
    EXPECT_EQ(RedisCli(p, "GET counter"), "\"42\"");
    EXPECT_EQ(RedisCli(p, "GET m1"), "\"one-more\"");
    EXPECT_EQ(RedisCli(p, "GET after-restart"), "\"yes\"");
    EXPECT_EQ(RedisCli(p, "EXISTS gone"), "(integer) 0");
    EXPECT_EQ(RedisCli(p, "DBSIZE"), "(integer) 5");
    // SIGKILL of cosmosd: its pool file keeps what was flushed.
    EXPECT_EQ(RedisCli(p, "SET before-node-kill 1"), "OK");
    kv.Kill(SIGTERM);
    d.Stop(SIGKILL);
  }
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    KvServer kv("", KvArgs(d, "kv"));
    ASSERT_TRUE(kv.Start());
    EXPECT_EQ(RedisCli(kv.port(), "GET before-node-kill"), "\"1\"");
    EXPECT_EQ(RedisCli(kv.port(), "GET " + secret_key), "\"" + secret + "\"");
    kv.Kill(SIGTERM);
    d.Stop(SIGTERM);
  }
  // The node never saw plaintext: neither the value nor the key is in its pool.
  const std::string file = FileBytes(pool_);
  ASSERT_GT(file.size(), 1u << 20);
  EXPECT_EQ(file.find(secret), std::string::npos);
  EXPECT_EQ(file.find(secret_key), std::string::npos);
  EXPECT_EQ(file.find("one-more"), std::string::npos);
}

// Control for the plaintext check above: the same value on a plain region
// IS visible in the pool file (so the check can fail).
TEST_F(KvRemote, PlainRegionIsReportedPlainAndStoresPlaintext) {
  const std::string value = "COSMOS-KV-PLAIN-VALUE-0c4d2e";
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    KvServer kv("", KvArgs(d, "plainkv", /*plain=*/true));
    ASSERT_TRUE(kv.Start());
    EXPECT_EQ(RedisCli(kv.port(), "SET k " + value), "OK");
    EXPECT_EQ(InfoField(kv.port(), "cosmos_storage_backend"),
              "remote " + d.address() + " region plainkv (plain)");
    EXPECT_EQ(InfoField(kv.port(), "cosmos_security_mode").rfind("none (plain remote region", 0),
              0u);
    kv.Kill(SIGTERM);
    // A secure cosmos-kv refuses the existing plain region.
    KvServer secure_kv("", KvArgs(d, "plainkv"));
    EXPECT_FALSE(secure_kv.Start());
    d.Stop(SIGTERM);
  }
  EXPECT_NE(FileBytes(pool_).find(value), std::string::npos);
}

// The node dies under cosmos-kv: clients get RESP errors, and a write whose
// durability was not confirmed is never acknowledged with +OK.
TEST_F(KvRemote, LostNodeGivesRespErrorsNeverFalseAcks) {
  rpm_test::Daemon d;
  ASSERT_TRUE(StartDaemon(d));
  KvServer kv("", KvArgs(d, "kv"));
  ASSERT_TRUE(kv.Start());
  EXPECT_EQ(RedisCli(kv.port(), "SET before ok"), "OK");
  RespClient writer(kv.port());
  ASSERT_TRUE(writer.connected());
  d.Stop(SIGKILL);
  ASSERT_TRUE(writer.SendRaw(RespClient::Encode({"SET", "after", "lost"})));
  // New requests eventually get an error reply (once the client library has
  // declared the node lost); each attempt waits at most 5 s for a reply.
  bool got_error = false;
  for (int attempt = 0; attempt < 20 && !got_error; ++attempt) {
    RespClient c(kv.port());
    ASSERT_TRUE(c.connected()) << "cosmos-kv died";
    ASSERT_TRUE(c.SendRaw(RespClient::Encode({"SET", "probe", std::to_string(attempt)})));
    auto r = c.ReadReplyWithTimeout(timeval{5, 0});
    if (r.has_value()) {
      ASSERT_NE(r->type, '+') << "a write was acknowledged after the node died: " << r->text;
      if (r->type == '-') got_error = true;
    }
  }
  EXPECT_TRUE(got_error);
  // The write in flight when the node died got no +OK.
  timeval short_wait{1, 0};
  auto r = writer.ReadReplyWithTimeout(short_wait);
  if (r.has_value()) {
    EXPECT_EQ(r->type, '-') << r->text;
  }
  // cosmos-kv is still alive and answers (with errors) rather than crashing.
  EXPECT_NE(RedisCli(kv.port(), "PING").find("PONG"), std::string::npos);
  EXPECT_EQ(RedisCli(kv.port(), "GET before").rfind("(error)", 0), 0u);
}

// SIGKILL crash test in remote mode: cosmos-kv on a secure region is killed
// under concurrent MSET load, and every third round cosmosd is killed first;
// after each restart every acknowledged write is present and no
// unacknowledged pair is half-present.
TEST_F(KvRemote, SigkillOfKvAndNodeUnderLoadLosesNoAcknowledgedWrite) {
  const char* env = std::getenv("COSMOS_KV_REMOTE_CRASH_KILLS");
  const int kills = env != nullptr ? std::atoi(env) : 10;
  constexpr int kWriters = 3;
  std::vector<WriterState> states(kWriters);
  std::mt19937 rng(7);
  auto d = std::make_unique<rpm_test::Daemon>();
  ASSERT_TRUE(StartDaemon(*d));
  KvServer kv("", {});
  int node_kills = 0;
  for (int k = 0; k < kills; ++k) {
    kv.set_extra(KvArgs(*d, "crash"));
    ASSERT_TRUE(kv.Start()) << "restart " << k << " failed";
    for (int w = 0; w < kWriters; ++w) Verify(kv.port(), w, &states[w], k);
    if (HasFatalFailure()) return;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back(Writer, kv.port(), w, &states[w], &stop);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 400));
    const bool kill_node = k % 3 == 2;
    if (kill_node) {
      d->Stop(SIGKILL);
      ++node_kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 50));
    }
    kv.Kill(SIGKILL);
    stop = true;
    for (auto& t : writers) t.join();
    if (kill_node) {
      d = std::make_unique<rpm_test::Daemon>();
      ASSERT_TRUE(StartDaemon(*d)) << "cosmosd restart " << k << " failed";
    }
  }
  kv.set_extra(KvArgs(*d, "crash"));
  ASSERT_TRUE(kv.Start());
  int64_t total_acked = 0;
  for (int w = 0; w < kWriters; ++w) {
    Verify(kv.port(), w, &states[w], kills);
    total_acked += states[w].acked_below;
  }
  EXPECT_GT(total_acked, kills);
  std::printf(
      "kv remote crash test: %d kills (%d with cosmosd), %lld acknowledged MSET pairs "
      "verified\n",
      kills, node_kills, static_cast<long long>(total_acked));
  kv.Kill(SIGTERM);
  d->Stop(SIGTERM);
}

// Hashes, lists, sets, sorted sets and an EXEC on a secure region: whole
// values and delta records (a hash large enough to log deltas) survive a
// restart of cosmos-kv and cosmosd, and no field, value or member reaches
// the node's pool file in the clear. The plain-region control above shows
// such a check can fail.
TEST_F(KvRemote, DataTypesOnASecureRegionStayEncryptedAndDurable) {
  const std::string field = "SECRET-FIELD-a81c", value = "SECRET-VALUE-19fe";
  const std::string element = "SECRET-ELEMENT-77d0", member = "SECRET-MEMBER-3b2a";
  std::string big = "HSET big";
  for (int i = 0; i < 80; ++i)
    big += " f" + std::to_string(i) + " filler-value-" + std::to_string(i);
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    KvServer kv("", KvArgs(d, "kv"));
    ASSERT_TRUE(kv.Start());
    const int p = kv.port();
    EXPECT_EQ(RedisCli(p, "HSET h " + field + " " + value), "(integer) 1");
    EXPECT_EQ(RedisCli(p, "RPUSH l " + element + " second"), "(integer) 2");
    EXPECT_EQ(RedisCli(p, "SADD s " + member), "(integer) 1");
    EXPECT_EQ(RedisCli(p, "ZADD z 1.5 " + member), "(integer) 1");
    EXPECT_EQ(RedisCli(p, big), "(integer) 80");
    EXPECT_EQ(RedisCli(p, "HSET big " + field + " " + value), "(integer) 1");  // a delta record
    RespClient c(p);
    for (const std::vector<std::string>& cmd :
         std::vector<std::vector<std::string>>{{"MULTI"}, {"LPOP", "l"}, {"HDEL", "big", "f0"}}) {
      ASSERT_TRUE(c.Call(cmd).has_value());
    }
    auto exec = c.Call({"EXEC"});
    ASSERT_TRUE(exec.has_value());
    EXPECT_EQ(exec->elements.size(), 2u);
    kv.Kill(SIGTERM);
    EXPECT_EQ(WEXITSTATUS(d.Stop(SIGTERM)), 0);
  }
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    KvServer kv("", KvArgs(d, "kv"));
    ASSERT_TRUE(kv.Start());
    const int p = kv.port();
    EXPECT_EQ(RedisCli(p, "HGET h " + field), "\"" + value + "\"");
    EXPECT_EQ(RedisCli(p, "LRANGE l 0 -1"), "1) \"second\"");
    EXPECT_EQ(RedisCli(p, "SISMEMBER s " + member), "(integer) 1");
    EXPECT_EQ(RedisCli(p, "ZSCORE z " + member), "\"1.5\"");
    EXPECT_EQ(RedisCli(p, "HGET big " + field), "\"" + value + "\"");
    EXPECT_EQ(RedisCli(p, "HLEN big"), "(integer) 80");
    EXPECT_EQ(RedisCli(p, "TYPE z"), "zset");
    kv.Kill(SIGTERM);
    d.Stop(SIGTERM);
  }
  const std::string file = FileBytes(pool_);
  for (const std::string& secret : {field, value, element, member}) {
    EXPECT_EQ(file.find(secret), std::string::npos) << secret << " is in the node's pool file";
  }
}

}  // namespace
}  // namespace cosmos::kv::testing
