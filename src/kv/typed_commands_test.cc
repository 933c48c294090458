// Tests of the data-type commands and MULTI/EXEC through the Dispatcher on
// the in-memory device: exact replies, WRONGTYPE, durability across restart
// and compaction (including an EXPIRE that compaction folds into a typed
// record), and EXEC all-or-nothing at every simulated power-loss point.
#include <gtest/gtest.h>

#include <atomic>

#include "kv/commands.h"
#include "kv/log_device_memory.h"
#include "kv/resp.h"

namespace cosmos::kv {
namespace {

// A Dispatcher over a Store on a MemoryLogDevice that can be reopened.
class Harness {
 public:
  explicit Harness(MemoryLogDevice* dev) : dev_(dev) { Open(); }

  bool Open() {
    StoreOptions o;
    o.background_compaction = false;
    o.now_ms = [this] { return now_.load(); };
    auto s = Store::Open(dev_, o);
    if (!s.ok()) return false;
    store_ = std::move(*s);
    dispatcher_ = std::make_unique<Dispatcher>(store_.get(), DispatcherOptions{});
    return true;
  }
  void Close() {
    dispatcher_.reset();
    store_.reset();
  }

  // Runs an inline command; returns the raw reply, or "<not durable>" if
  // the store could not make the command's writes durable.
  std::string Run(const std::string& line, ClientSession* session = nullptr) {
    RespParser p;
    size_t consumed;
    std::vector<std::string_view> args;
    const std::string in = line + "\r\n";
    EXPECT_EQ(p.Parse(in, &consumed, &args), RespParser::Outcome::kCommand);
    std::string out;
    const uint64_t seq = dispatcher_->Execute(session ? *session : session_, args, &out);
    if (!store_->WaitDurable(seq).ok()) return "<not durable>";
    return out;
  }

  Store* store() { return store_.get(); }
  std::atomic<int64_t> now_{1'000'000};

 private:
  MemoryLogDevice* dev_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Dispatcher> dispatcher_;
  ClientSession session_;
};

class TypedCommandsTest : public ::testing::Test {
 protected:
  MemoryLogDevice dev_{4 << 20};
  Harness h_{&dev_};
};

TEST_F(TypedCommandsTest, HashCommandsReplyLikeRedis) {
  EXPECT_EQ(h_.Run("HSET h a 1 b 2"), ":2\r\n");
  EXPECT_EQ(h_.Run("HSET h a 3"), ":0\r\n");
  EXPECT_EQ(h_.Run("HGETALL h"), "*4\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n");
  EXPECT_EQ(h_.Run("HINCRBY h a 4"), ":7\r\n");
  EXPECT_EQ(h_.Run("HINCRBYFLOAT h f 2.5"), "$3\r\n2.5\r\n");
  EXPECT_EQ(h_.Run("HDEL h a b f"), ":3\r\n");
  EXPECT_EQ(h_.Run("EXISTS h"), ":0\r\n");  // empty hashes are removed
}

TEST_F(TypedCommandsTest, WrongTypeUsesRedisText) {
  const std::string wrongtype =
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
  EXPECT_EQ(h_.Run("RPUSH l a"), ":1\r\n");
  EXPECT_EQ(h_.Run("GET l"), wrongtype);
  EXPECT_EQ(h_.Run("HGET l f"), wrongtype);
  EXPECT_EQ(h_.Run("SADD l m"), wrongtype);
  EXPECT_EQ(h_.Run("ZSCORE l m"), wrongtype);
  EXPECT_EQ(h_.Run("INCR l"), wrongtype);
  EXPECT_EQ(h_.Run("TYPE l"), "+list\r\n");
  EXPECT_EQ(h_.Run("SET l s"), "+OK\r\n");  // SET overwrites any type
  EXPECT_EQ(h_.Run("TYPE l"), "+string\r\n");
  EXPECT_EQ(h_.Run("LPUSH l x"), wrongtype);
}

TEST_F(TypedCommandsTest, EveryTypeSurvivesRestartAndCompaction) {
  h_.Run("HSET h f1 v1 f2 v2");
  h_.Run("RPUSH l a b c");
  h_.Run("SADD s x y");
  h_.Run("ZADD z 1 a 2 b");
  h_.Run("SET str plain");
  for (int i = 0; i < 50; ++i) h_.Run("RPUSH garbage " + std::to_string(i));  // garbage
  h_.Run("DEL garbage");
  // The EXPIRE record is folded into the hash's record by compaction.
  EXPECT_EQ(h_.Run("EXPIRE h 1000"), ":1\r\n");
  const std::vector<std::string> probes = {
      "HGETALL h", "LRANGE l 0 -1", "SMEMBERS s", "ZRANGE z 0 -1 WITHSCORES",
      "GET str",   "TYPE h",        "TYPE l",     "TYPE s",
      "TYPE z",    "TTL h",         "DBSIZE"};
  std::vector<std::string> before;
  for (const auto& p : probes) before.push_back(h_.Run(p));
  ASSERT_TRUE(h_.store()->Compact().ok());
  for (size_t i = 0; i < probes.size(); ++i) EXPECT_EQ(h_.Run(probes[i]), before[i]) << probes[i];
  h_.Close();
  dev_.Crash();
  ASSERT_TRUE(h_.Open());
  for (size_t i = 0; i < probes.size(); ++i) EXPECT_EQ(h_.Run(probes[i]), before[i]) << probes[i];
  EXPECT_EQ(before[5], "+hash\r\n");
  EXPECT_EQ(before[9], ":1000\r\n");
}

TEST_F(TypedCommandsTest, RenameMovesTypeAndTtl) {
  h_.Run("ZADD z 1 a");
  h_.Run("PEXPIRE z 5000");
  EXPECT_EQ(h_.Run("RENAME z z2"), "+OK\r\n");
  EXPECT_EQ(h_.Run("TYPE z2"), "+zset\r\n");
  EXPECT_EQ(h_.Run("PTTL z2"), ":5000\r\n");
  EXPECT_EQ(h_.Run("EXISTS z"), ":0\r\n");
}

TEST_F(TypedCommandsTest, ExecRunsQueuedCommandsAsOneBatch) {
  EXPECT_EQ(h_.Run("MULTI"), "+OK\r\n");
  EXPECT_EQ(h_.Run("HSET h f v"), "+QUEUED\r\n");
  EXPECT_EQ(h_.Run("INCR n"), "+QUEUED\r\n");
  EXPECT_EQ(h_.Run("GET h"), "+QUEUED\r\n");
  EXPECT_EQ(h_.Run("EXEC"),
            "*3\r\n:1\r\n:1\r\n-WRONGTYPE Operation against a key holding the wrong kind of "
            "value\r\n");
  EXPECT_EQ(h_.Run("EXEC"), "-ERR EXEC without MULTI\r\n");
}

TEST_F(TypedCommandsTest, WatchAbortsWhenAnotherClientWrites) {
  ClientSession other;
  h_.Run("SET k 1");
  EXPECT_EQ(h_.Run("WATCH k"), "+OK\r\n");
  EXPECT_EQ(h_.Run("SET k 2", &other), "+OK\r\n");
  h_.Run("MULTI");
  h_.Run("SET k 3");
  EXPECT_EQ(h_.Run("EXEC"), "*-1\r\n");
  EXPECT_EQ(h_.Run("GET k"), "$1\r\n2\r\n");
}

// One EXEC = one commit group: a power loss at any persist point, with the
// unflushed words torn, leaves every EXEC applied entirely or not at all,
// and every acknowledged EXEC applied.
TEST(TypedCommandsCrash, ExecIsAllOrNothingAtEveryPersistPoint) {
  int points = 0;
  for (uint64_t k = 1; k < 200; ++k) {
    MemoryLogDevice dev(1 << 20);
    int acked = 0;
    bool crashed = false;
    {
      Harness h(&dev);
      dev.CrashAtPersistPoint(dev.persist_count() + k);
      for (int i = 1; i <= 8 && !crashed; ++i) {
        const std::string n = std::to_string(i);
        h.Run("MULTI");
        h.Run("HSET h f" + n + " " + n);
        h.Run("RPUSH l " + n);
        h.Run("SADD s " + n);
        h.Run("ZADD z " + n + " m" + n);
        h.Run("INCR counter");
        const std::string r = h.Run("EXEC");
        if (r == "<not durable>" || r[0] == '-' || r.find("-MISCONF") != std::string::npos) {
          crashed = true;
        } else {
          acked = i;
        }
      }
    }
    if (!crashed) break;
    ++points;
    dev.Crash(/*tear_seed=*/k);
    Harness h(&dev);
    const std::string counter = h.Run("GET counter");
    int got = 0;
    if (counter != "$-1\r\n") got = std::stoi(counter.substr(counter.find("\r\n") + 2));
    EXPECT_GE(got, acked) << "persist point " << k;
    EXPECT_LE(got, acked + 1) << "persist point " << k;
    const std::string len = ":" + std::to_string(got) + "\r\n";
    EXPECT_EQ(h.Run("HLEN h"), len) << "persist point " << k;
    EXPECT_EQ(h.Run("LLEN l"), len) << "persist point " << k;
    EXPECT_EQ(h.Run("SCARD s"), len) << "persist point " << k;
    EXPECT_EQ(h.Run("ZCARD z"), len) << "persist point " << k;
  }
  EXPECT_GE(points, 8);
}

}  // namespace
}  // namespace cosmos::kv
