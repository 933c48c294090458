// Tests of the data-type commands and MULTI/EXEC through the Dispatcher on
// the in-memory device: exact replies, WRONGTYPE, durability across restart
// and compaction (including an EXPIRE that compaction folds into a typed
// record), and EXEC all-or-nothing at every simulated power-loss point.
#include "kv/typed_commands.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <set>
#include <thread>

#include "kv/commands.h"
#include "kv/log_device_memory.h"
#include "kv/resp.h"

namespace cosmos::kv {
namespace {

constexpr uint32_t kMaxDeltaChainForTest = kMaxDeltaChain;

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
  // Runs a command given as arguments (for values an inline line cannot hold).
  std::string RunArgs(const std::vector<std::string>& argv) {
    std::vector<std::string_view> args(argv.begin(), argv.end());
    std::string out;
    const uint64_t seq = dispatcher_->Execute(session_, args, &out);
    if (!store_->WaitDurable(seq).ok()) return "<not durable>";
    return out;
  }
  // Runs a command without waiting for its writes to become durable (they
  // stay in the store's staging buffer until the next commit).
  void RunNoWait(const std::string& line) {
    RespParser p;
    size_t consumed;
    std::vector<std::string_view> args;
    const std::string in = line + "\r\n";
    EXPECT_EQ(p.Parse(in, &consumed, &args), RespParser::Outcome::kCommand);
    std::string out;
    dispatcher_->Execute(session_, args, &out);
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

// Builds collections large enough (base record >= kMinDeltaBase) that
// changes are logged as delta records.
void FillLarge(Harness& h, int n) {
  std::string hset = "HSET big:h", rpush = "RPUSH big:l", sadd = "SADD big:s", zadd = "ZADD big:z";
  for (int i = 0; i < n; ++i) {
    const std::string e = "element-number-" + std::to_string(i);
    hset += " f" + std::to_string(i) + " " + e;
    rpush += " " + e;
    sadd += " " + e;
    zadd += " " + std::to_string(i) + " " + e;
  }
  for (const auto& cmd : {hset, rpush, sadd, zadd}) EXPECT_EQ(h.Run(cmd)[0], ':') << cmd;
}

const std::vector<std::string> kLargeProbes = {
    "HGETALL big:h", "LRANGE big:l 0 -1", "SMEMBERS big:s", "ZRANGE big:z 0 -1 WITHSCORES",
    "HLEN big:h",    "LLEN big:l",        "SCARD big:s",    "ZCARD big:z"};

std::vector<std::string> Probe(Harness& h) {
  std::vector<std::string> out;
  for (const auto& p : kLargeProbes) out.push_back(h.Run(p));
  return out;
}

void ChangeLarge(Harness& h, int round, bool wait) {
  const std::string r = std::to_string(round);
  const std::vector<std::string> cmds = {"HSET big:h new" + r + " v" + r,
                                         "HDEL big:h f" + r,
                                         "RPUSH big:l tail" + r,
                                         "LPOP big:l",
                                         "LPUSH big:l head" + r,
                                         "LTRIM big:l 0 -2",
                                         "SADD big:s add" + r,
                                         "SREM big:s element-number-" + r,
                                         "ZADD big:z 1000 z" + r,
                                         "ZINCRBY big:z 0.5 element-number-" + r,
                                         "ZREM big:z element-number-" + std::to_string(round + 50)};
  for (const auto& c : cmds) {
    if (wait) {
      h.Run(c);
    } else {
      h.RunNoWait(c);
    }
  }
}

TEST(TypedCommandsDeltas, LargeCollectionsLogDeltasThatSurviveCompactionAndRestart) {
  MemoryLogDevice dev(8 << 20);
  Harness h(&dev);
  FillLarge(h, 100);
  for (int round = 0; round < 20; ++round) ChangeLarge(h, round, true);
  for (const char* key : {"big:h", "big:l", "big:s", "big:z"}) {
    auto info = h.store()->Lookup(key);
    ASSERT_TRUE(info.ok() && info->has_value());
    EXPECT_GT((*info)->delta_count, 0u) << key << " was not written as deltas";
    EXPECT_LE((*info)->delta_bytes, (*info)->value_len) << key;
  }
  // Changes still staged when the compaction starts are copied raw after
  // the live records; their chain positions must follow. (A probe would
  // commit them first, so the expected replies come from a twin store.)
  MemoryLogDevice twin_dev(8 << 20);
  Harness twin(&twin_dev);
  FillLarge(twin, 100);
  for (int round = 0; round < 25; ++round) ChangeLarge(twin, round, true);
  for (int round = 20; round < 25; ++round) ChangeLarge(h, round, false);
  ASSERT_TRUE(h.store()->Compact().ok());
  EXPECT_EQ(Probe(h), Probe(twin));
  for (int round = 25; round < 30; ++round) ChangeLarge(h, round, true);
  const std::vector<std::string> after = Probe(h);
  h.Close();
  dev.Crash();
  ASSERT_TRUE(h.Open());
  EXPECT_EQ(Probe(h), after);
  ASSERT_TRUE(h.store()->Compact().ok());
  EXPECT_EQ(Probe(h), after);
  EXPECT_EQ(h.Run("RENAME big:l big:l2"), "+OK\r\n");  // folds the chain into one value
  EXPECT_EQ(h.Run("LRANGE big:l2 0 -1"), after[1]);
}

TEST(TypedCommandsDeltas, ChainsAreRewrittenWholeBeforeOutgrowingTheBase) {
  MemoryLogDevice dev(16 << 20);
  Harness h(&dev);
  FillLarge(h, 60);
  uint32_t max_chain = 0;
  for (int i = 0; i < 3000; ++i) {
    h.Run("RPUSH big:l x" + std::to_string(i));
    auto info = h.store()->Lookup("big:l");
    ASSERT_TRUE(info.ok() && info->has_value());
    ASSERT_LE((*info)->delta_bytes, (*info)->value_len);
    ASSERT_LT((*info)->delta_count, kMaxDeltaChainForTest);
    max_chain = std::max(max_chain, (*info)->delta_count);
  }
  EXPECT_GT(max_chain, 10u);
  EXPECT_EQ(h.Run("LLEN big:l"), ":3060\r\n");
}

// Compactions running concurrently with commands on large lists (as the
// background compactor does): deltas committed while a compaction copies
// ([t0, t1)) and staged at its switch keep their places in the chains.
// Every LRANGE matches a model, before and after a restart.
TEST(TypedCommandsDeltas, ConcurrentCompactionsKeepChainsIntact) {
  MemoryLogDevice dev(4 << 20);
  Harness h(&dev);
  std::vector<std::deque<std::string>> model(3);
  for (int k = 0; k < 3; ++k) {
    std::string cmd = "RPUSH big:" + std::to_string(k);
    for (int i = 0; i < 80; ++i) {
      const std::string e = "initial-element-" + std::to_string(i);
      cmd += " " + e;
      model[k].push_back(e);
    }
    ASSERT_EQ(h.Run(cmd), ":80\r\n");
  }
  std::atomic<bool> done{false};
  std::atomic<int> compactions{0};
  std::thread compactor([&] {
    while (!done.load()) {
      if (h.store()->Compact().ok()) ++compactions;
    }
  });
  auto expect_range = [&](int k) {
    std::string want = "*" + std::to_string(model[k].size()) + "\r\n";
    for (const auto& e : model[k]) want += "$" + std::to_string(e.size()) + "\r\n" + e + "\r\n";
    return want;
  };
  // At least 1500 commands and until several compactions ran meanwhile (the
  // bound only guards against a compactor that never completes).
  for (int i = 0; i < 1500 || (compactions.load() < 5 && i < 300000); ++i) {
    const int k = i % 3;
    const std::string key = "big:" + std::to_string(k);
    const std::string e = "e" + std::to_string(i);
    switch (i % 5) {
      case 0:
      case 1:
        h.Run("RPUSH " + key + " " + e);
        model[k].push_back(e);
        break;
      case 2:
        h.Run("LPUSH " + key + " " + e);
        model[k].push_front(e);
        break;
      case 3:
        h.Run("LPOP " + key);
        model[k].pop_front();
        break;
      case 4:
        h.Run("LTRIM " + key + " 0 -2");
        model[k].pop_back();
        break;
    }
    if (i % 97 == 0) {
      ASSERT_EQ(h.Run("LRANGE " + key + " 0 -1"), expect_range(k)) << i;
    }
  }
  done = true;
  compactor.join();
  EXPECT_GE(compactions.load(), 5);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(h.Run("LRANGE big:" + std::to_string(k) + " 0 -1"), expect_range(k));
  }
  h.Close();
  dev.Crash();
  ASSERT_TRUE(h.Open());
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(h.Run("LRANGE big:" + std::to_string(k) + " 0 -1"), expect_range(k));
  }
}

// The decoded-value cache serves large collections between commands, and
// never serves a value the log does not hold: a write that failed (log
// full) leaves nothing behind, and writes that bypass the cache (a string
// SET over the key, DEL) make it a miss.
TEST(TypedCommandsCache, ServesOnlyWhatTheLogHolds) {
  MemoryLogDevice dev(512 * 1024);
  Harness h(&dev);
  FillLarge(h, 100);
  EXPECT_EQ(h.Run("HSET big:h cached yes"), ":1\r\n");
  EXPECT_EQ(h.Run("HGET big:h cached"), "$3\r\nyes\r\n");  // from the cache
  // A field too large for the log: the write fails and must not be served.
  const std::string huge(300 * 1024, 'x');
  const std::string r = h.RunArgs({"HSET", "big:h", "huge", huge});
  EXPECT_EQ(r.rfind("-OOM", 0), 0u) << r.substr(0, 80);
  EXPECT_EQ(h.Run("HGET big:h huge"), "$-1\r\n");
  EXPECT_EQ(h.Run("HLEN big:h"), ":101\r\n");
  // Writes that do not go through the cache.
  EXPECT_EQ(h.Run("SET big:h now-a-string"), "+OK\r\n");
  EXPECT_EQ(h.Run("HGET big:h cached").rfind("-WRONGTYPE", 0), 0u);
  EXPECT_EQ(h.Run("DEL big:l"), ":1\r\n");
  EXPECT_EQ(h.Run("RPUSH big:l only"), ":1\r\n");
  EXPECT_EQ(h.Run("LRANGE big:l 0 -1"), "*1\r\n$4\r\nonly\r\n");
  // The cache and the log agree after a restart.
  const std::string zset = h.Run("ZRANGE big:z 0 5 WITHSCORES");
  h.Close();
  dev.Crash();
  ASSERT_TRUE(h.Open());
  EXPECT_EQ(h.Run("ZRANGE big:z 0 5 WITHSCORES"), zset);
}

// One EXEC = one commit group: a power loss at any persist point, with the
// unflushed words torn, leaves every EXEC applied entirely or not at all,
// and every acknowledged EXEC applied.
// `compact`: a compaction runs after the fourth EXEC, so the power loss
// also hits each of its persist points while it copies delta chains.
void ExecAllOrNothing(bool large, bool compact = false) {
  const std::string p = large ? "big:" : "";  // big:* collections log deltas
  const int base = large ? 100 : 0;
  int points = 0;
  for (uint64_t k = 1; k < 200; ++k) {
    MemoryLogDevice dev(1 << 20);
    int acked = 0;
    bool crashed = false;
    {
      Harness h(&dev);
      if (large) FillLarge(h, base);
      dev.CrashAtPersistPoint(dev.persist_count() + k);
      for (int i = 1; i <= 8 && !crashed; ++i) {
        const std::string n = std::to_string(i);
        h.Run("MULTI");
        h.Run("HSET " + p + "h x" + n + " " + n);
        h.Run("RPUSH " + p + "l " + n);
        h.Run("SADD " + p + "s " + n);
        h.Run("ZADD " + p + "z " + n + " m" + n);
        h.Run("INCR counter");
        const std::string r = h.Run("EXEC");
        if (r == "<not durable>" || r[0] == '-' || r.find("-MISCONF") != std::string::npos) {
          crashed = true;
        } else {
          acked = i;
        }
        if (!crashed && compact && i == 4 && !h.store()->Compact().ok()) crashed = true;
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
    const std::string len = ":" + std::to_string(base + got) + "\r\n";
    EXPECT_EQ(h.Run("HLEN " + p + "h"), len) << "persist point " << k;
    EXPECT_EQ(h.Run("LLEN " + p + "l"), len) << "persist point " << k;
    EXPECT_EQ(h.Run("SCARD " + p + "s"), len) << "persist point " << k;
    EXPECT_EQ(h.Run("ZCARD " + p + "z"), len) << "persist point " << k;
    if (large) {
      auto info = h.store()->Lookup(p + "l");
      ASSERT_TRUE(info.ok() && info->has_value());
      EXPECT_EQ((*info)->delta_count, static_cast<uint32_t>(got)) << "EXECs logged deltas";
    }
  }
  EXPECT_GE(points, compact ? 13 : 8);  // a compaction adds about five persist points
}

TEST(TypedCommandsCrash, ExecIsAllOrNothingAtEveryPersistPoint) { ExecAllOrNothing(false); }
TEST(TypedCommandsCrash, ExecOfDeltasIsAllOrNothingAtEveryPersistPoint) { ExecAllOrNothing(true); }
TEST(TypedCommandsCrash, DeltaChainsSurvivePowerLossDuringCompaction) {
  ExecAllOrNothing(true, /*compact=*/true);
}

// Parses a HSCAN/SSCAN/ZSCAN reply: the next cursor and the array's bulks.
uint64_t ParseScanReply(const std::string& r, std::vector<std::string>* items) {
  size_t at = r.find("\r\n$");
  EXPECT_NE(at, std::string::npos) << r;
  at += 3;
  size_t eol = r.find("\r\n", at);
  const size_t len = std::stoul(r.substr(at, eol - at));
  const uint64_t cursor = std::stoull(r.substr(eol + 2, len));
  at = r.find('*', eol + 2 + len);
  eol = r.find("\r\n", at);
  const size_t n = std::stoul(r.substr(at + 1, eol - at - 1));
  at = eol + 2;
  for (size_t i = 0; i < n; ++i) {
    eol = r.find("\r\n", at);
    const size_t l = std::stoul(r.substr(at + 1, eol - at - 1));
    items->push_back(r.substr(eol + 2, l));
    at = eol + 2 + l + 2;
  }
  return cursor;
}

// Large collections are scanned with a real cursor (several calls of about
// COUNT elements), and every element present for the whole iteration is
// returned although elements are added and removed between the calls.
TEST_F(TypedCommandsTest, ScanCursorsVisitEveryStableElementWhileTheCollectionChanges) {
  for (const std::string type : {"hash", "set", "zset"}) {
    SCOPED_TRACE(type);
    h_.Run("FLUSHALL");
    const std::string add = type == "hash" ? "HSET" : type == "set" ? "SADD" : "ZADD";
    const std::string scan = type == "hash" ? "HSCAN" : type == "set" ? "SSCAN" : "ZSCAN";
    auto element = [&](const std::string& name) {
      return type == "set" ? std::vector<std::string>{add, "k", name}
                           : std::vector<std::string>{add, "k", type == "hash" ? name : "1",
                                                      type == "hash" ? "v" : name};
    };
    for (int i = 0; i < 600; ++i) h_.RunArgs(element("stable" + std::to_string(i)));
    for (int i = 0; i < 300; ++i) h_.RunArgs(element("gone" + std::to_string(i)));
    std::set<std::string> seen;
    uint64_t cursor = 0;
    int calls = 0, churn = 0;
    do {
      std::vector<std::string> items;
      cursor =
          ParseScanReply(h_.RunArgs({scan, "k", std::to_string(cursor), "COUNT", "25"}), &items);
      for (size_t i = 0; i < items.size(); i += (type == "set" ? 1 : 2)) seen.insert(items[i]);
      // Churn between calls: remove a "gone" element, add a "new" one.
      const std::string del = type == "hash" ? "HDEL" : type == "set" ? "SREM" : "ZREM";
      if (churn < 300) h_.RunArgs({del, "k", "gone" + std::to_string(churn)});
      h_.RunArgs(element("new" + std::to_string(churn++)));
      ASSERT_LT(++calls, 10000);
    } while (cursor != 0);
    EXPECT_GT(calls, 10) << "a large collection came back in one call";
    for (int i = 0; i < 600; ++i) {
      EXPECT_EQ(seen.count("stable" + std::to_string(i)), 1u) << "missed stable" << i;
    }
  }
  // Small collections still answer at once with cursor 0, as Redis does.
  h_.Run("FLUSHALL");
  h_.Run("HSET small a 1 b 2");
  EXPECT_EQ(h_.Run("HSCAN small 0 COUNT 1"),
            "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");
}

}  // namespace
}  // namespace cosmos::kv
