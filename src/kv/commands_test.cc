// Dispatcher tests: every supported command's replies in Redis's exact
// form, over a Store on the in-memory device.
#include "kv/commands.h"

#include <gtest/gtest.h>

#include <atomic>

#include "kv/log_device_memory.h"
#include "kv/resp.h"
#include "kv/resp3.h"

namespace cosmos::kv {
namespace {

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.now_ms = [this] { return now_.load(); };
    o.max_value_size = 1 << 20;
    store_ = std::move(*Store::Open(&dev_, o));
    DispatcherOptions d;
    d.max_bulk_len = 1 << 20;
    d.security_mode = "none";
    dispatcher_ = std::make_unique<Dispatcher>(store_.get(), d);
  }

  // Runs an inline command line and returns the raw RESP reply.
  std::string Run(const std::string& line) {
    RespParser p;
    size_t consumed;
    std::vector<std::string_view> args;
    std::string in = line + "\r\n";
    EXPECT_EQ(p.Parse(in, &consumed, &args), RespParser::Outcome::kCommand);
    std::string out;
    uint64_t seq = dispatcher_->Execute(session_, args, &out);
    EXPECT_TRUE(store_->WaitDurable(seq).ok());
    return out;
  }

  MemoryLogDevice dev_{4 << 20};
  std::atomic<int64_t> now_{1'700'000'000'000};
  std::unique_ptr<Store> store_;
  std::unique_ptr<Dispatcher> dispatcher_;
  ClientSession session_;
};

TEST_F(CommandsTest, PingEchoSelectQuit) {
  EXPECT_EQ(Run("PING"), "+PONG\r\n");
  EXPECT_EQ(Run("ping hello"), "$5\r\nhello\r\n");
  EXPECT_EQ(Run("ECHO \"a b\""), "$3\r\na b\r\n");
  EXPECT_EQ(Run("SELECT 0"), "+OK\r\n");
  EXPECT_EQ(Run("SELECT 1"), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(Run("QUIT"), "+OK\r\n");
  EXPECT_TRUE(session_.quit);
}

TEST_F(CommandsTest, UnknownCommandUsesRedisErrorForm) {
  EXPECT_EQ(Run("FOO a b"), "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
  EXPECT_EQ(Run("foo"), "-ERR unknown command 'foo', with args beginning with: \r\n");
  EXPECT_EQ(Run("GET"), "-ERR wrong number of arguments for 'get' command\r\n");
}

TEST_F(CommandsTest, SetGetWithOptions) {
  EXPECT_EQ(Run("GET k"), "$-1\r\n");
  EXPECT_EQ(Run("SET k v"), "+OK\r\n");
  EXPECT_EQ(Run("GET k"), "$1\r\nv\r\n");
  EXPECT_EQ(Run("SET k w NX"), "$-1\r\n");
  EXPECT_EQ(Run("SET k w XX"), "+OK\r\n");
  EXPECT_EQ(Run("SET other w XX"), "$-1\r\n");
  EXPECT_EQ(Run("SET k z GET"), "$1\r\nw\r\n");
  EXPECT_EQ(Run("SET k v NX XX"), "-ERR syntax error\r\n");
  EXPECT_EQ(Run("SET k v EX 0"), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(Run("SET k v EX abc"), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run("SET k v EX 10 PX 100"), "-ERR syntax error\r\n");
  EXPECT_EQ(Run("SET k v EX 10"), "+OK\r\n");
  EXPECT_EQ(Run("TTL k"), ":10\r\n");
  EXPECT_EQ(Run("SET k v2 KEEPTTL"), "+OK\r\n");
  EXPECT_EQ(Run("PTTL k"), ":10000\r\n");
  EXPECT_EQ(Run("SET k v3"), "+OK\r\n");
  EXPECT_EQ(Run("TTL k"), ":-1\r\n");
  EXPECT_EQ(Run("SET p v PX 1500"), "+OK\r\n");
  now_ += 1500;
  EXPECT_EQ(Run("GET p"), "$-1\r\n");
  EXPECT_EQ(Run("TTL p"), ":-2\r\n");
}

TEST_F(CommandsTest, DelExistsMgetMset) {
  EXPECT_EQ(Run("MSET a 1 b 2 c 3"), "+OK\r\n");
  EXPECT_EQ(Run("MSET a"), "-ERR wrong number of arguments for 'mset' command\r\n");
  EXPECT_EQ(Run("MGET a x c"), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n");
  EXPECT_EQ(Run("EXISTS a a x"), ":2\r\n");
  EXPECT_EQ(Run("DEL a a x"), ":1\r\n");
  EXPECT_EQ(Run("EXISTS a"), ":0\r\n");
  EXPECT_EQ(Run("DBSIZE"), ":2\r\n");
  EXPECT_EQ(Run("MSETNX b 9 z 9"), ":0\r\n");
  EXPECT_EQ(Run("MSETNX y 9 z 9"), ":1\r\n");
}

TEST_F(CommandsTest, IncrDecrFamily) {
  EXPECT_EQ(Run("INCR n"), ":1\r\n");
  EXPECT_EQ(Run("INCRBY n 10"), ":11\r\n");
  EXPECT_EQ(Run("DECR n"), ":10\r\n");
  EXPECT_EQ(Run("DECRBY n 15"), ":-5\r\n");
  EXPECT_EQ(Run("GET n"), "$2\r\n-5\r\n");
  EXPECT_EQ(Run("SET s abc"), "+OK\r\n");
  EXPECT_EQ(Run("INCR s"), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run("SET big 9223372036854775807"), "+OK\r\n");
  EXPECT_EQ(Run("INCR big"), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(Run("INCRBY n x"), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run("SET t 5 EX 100"), "+OK\r\n");
  EXPECT_EQ(Run("INCR t"), ":6\r\n");
  EXPECT_EQ(Run("TTL t"), ":100\r\n");  // INCR keeps the TTL, like Redis
}

// DECRBY used to test its argument against INT64_MIN even when it did not
// parse (an uninitialised read): the overflow case primes the same stack slot
// so the old code replied "decrement would overflow" to "DECRBY n x".
TEST_F(CommandsTest, DecrByRejectsAnArgumentThatDoesNotParse) {
  const std::string not_integer = "-ERR value is not an integer or out of range\r\n";
  for (const char* arg : {"x", "+1", "1.5", "\"\"", "-0", "99999999999999999999", "012"}) {
    EXPECT_EQ(Run("DECRBY n -9223372036854775808"), "-ERR decrement would overflow\r\n");
    EXPECT_EQ(Run(std::string("DECRBY n ") + arg), not_integer) << arg;
  }
  EXPECT_EQ(Run("GET n"), "$-1\r\n");
  EXPECT_EQ(Run("DECRBY n 9223372036854775807"), ":-9223372036854775807\r\n");
}

TEST_F(CommandsTest, AppendStrlenGetsetType) {
  EXPECT_EQ(Run("APPEND s hello"), ":5\r\n");
  EXPECT_EQ(Run("APPEND s \" world\""), ":11\r\n");
  EXPECT_EQ(Run("STRLEN s"), ":11\r\n");
  EXPECT_EQ(Run("STRLEN none"), ":0\r\n");
  EXPECT_EQ(Run("GETSET s new"), "$11\r\nhello world\r\n");
  EXPECT_EQ(Run("GETSET fresh x"), "$-1\r\n");
  EXPECT_EQ(Run("TYPE s"), "+string\r\n");
  EXPECT_EQ(Run("TYPE nothing"), "+none\r\n");
}

TEST_F(CommandsTest, KeysScanFlushdb) {
  Run("MSET user:1 a user:2 b other c");
  std::string keys = Run("KEYS user:*");
  EXPECT_EQ(keys.substr(0, 4), "*2\r\n");
  EXPECT_NE(keys.find("user:1"), std::string::npos);
  std::string scan = Run("SCAN 0 MATCH user:* COUNT 100");
  EXPECT_EQ(scan.substr(0, 9), "*2\r\n$1\r\n0");
  EXPECT_NE(scan.find("user:2"), std::string::npos);
  EXPECT_EQ(Run("SCAN x"), "-ERR invalid cursor\r\n");
  EXPECT_EQ(Run("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
  EXPECT_EQ(Run("FLUSHDB"), "+OK\r\n");
  EXPECT_EQ(Run("DBSIZE"), ":0\r\n");
  EXPECT_EQ(Run("KEYS *"), "*0\r\n");
}

TEST_F(CommandsTest, ExpireTtlPersist) {
  EXPECT_EQ(Run("EXPIRE missing 10"), ":0\r\n");
  Run("SET k v");
  EXPECT_EQ(Run("TTL k"), ":-1\r\n");
  EXPECT_EQ(Run("EXPIRE k 100"), ":1\r\n");
  EXPECT_EQ(Run("TTL k"), ":100\r\n");
  EXPECT_EQ(Run("PTTL k"), ":100000\r\n");
  EXPECT_EQ(Run("EXPIRE k 50 GT"), ":0\r\n");
  EXPECT_EQ(Run("EXPIRE k 500 GT"), ":1\r\n");
  EXPECT_EQ(Run("EXPIRE k 5 NX"), ":0\r\n");
  EXPECT_EQ(Run("PERSIST k"), ":1\r\n");
  EXPECT_EQ(Run("TTL k"), ":-1\r\n");
  EXPECT_EQ(Run("PEXPIRE k 1"), ":1\r\n");
  now_ += 2;
  EXPECT_EQ(Run("EXISTS k"), ":0\r\n");
  Run("SET d v");
  EXPECT_EQ(Run("EXPIRE d -1"), ":1\r\n");  // a past expiry deletes, like Redis
  EXPECT_EQ(Run("EXISTS d"), ":0\r\n");
  EXPECT_EQ(Run("EXPIRE d x"), "-ERR value is not an integer or out of range\r\n");
}

TEST_F(CommandsTest, InfoReportsStorageDurabilityAndSecurity) {
  Run("SET a b");
  std::string info = Run("INFO");
  EXPECT_NE(info.find("cosmos_storage_backend:memory"), std::string::npos);
  EXPECT_NE(info.find("cosmos_durability_level:none"), std::string::npos);
  EXPECT_NE(info.find("cosmos_security_mode:none"), std::string::npos);
  EXPECT_NE(info.find("db0:keys=1"), std::string::npos);
}

TEST_F(CommandsTest, CommandClientHello) {
  EXPECT_EQ(Run("COMMAND"), "*0\r\n");
  EXPECT_EQ(Run("COMMAND DOCS"), "*0\r\n");
  EXPECT_EQ(Run("COMMAND COUNT"), ":" + std::to_string(Dispatcher::CommandCount()) + "\r\n");
  EXPECT_EQ(Run("CLIENT GETNAME"), "$-1\r\n");
  EXPECT_EQ(Run("CLIENT SETNAME app1"), "+OK\r\n");
  EXPECT_EQ(Run("CLIENT GETNAME"), "$4\r\napp1\r\n");
  EXPECT_EQ(Run("CLIENT SETNAME \"a b\""),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  // CLIENT HELP exists (the unknown-subcommand error points at it).
  const std::string help = Run("CLIENT HELP");
  EXPECT_EQ(help.substr(0, 1), "*");
  EXPECT_NE(help.find("SETNAME <name>"), std::string::npos) << help;
  EXPECT_NE(Run("CLIENT BOGUS").find("Try CLIENT HELP"), std::string::npos);
  EXPECT_EQ(Run("HELLO 4"), "-NOPROTO unsupported protocol version\r\n");
  std::string hello = Run("HELLO 2");
  EXPECT_EQ(hello.substr(0, 5), "*14\r\n");
  EXPECT_NE(hello.find("proto\r\n:2"), std::string::npos);
}

// HELLO 3 switches the session to RESP3: maps, sets, doubles, nulls and
// verbatim strings where Redis 7.0 sends them (kv_redis_diff_test compares
// the bytes with a real redis-server); HELLO 2 and RESET switch back.
TEST_F(CommandsTest, Resp3RepliesAfterHello3) {
  EXPECT_EQ(Run("HELLO 3 AUTH bob pw"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_EQ(Run("HELLO 3 SETNAME \"a b\""),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(session_.resp, 2);  // a refused HELLO changes nothing
  const std::string hello = Run("HELLO 3 AUTH default any SETNAME app");
  EXPECT_EQ(hello.substr(0, 4), "%7\r\n") << hello;
  EXPECT_NE(hello.find("proto\r\n:3"), std::string::npos);
  EXPECT_EQ(session_.name, "app");
  EXPECT_EQ(Run("GET nokey"), "_\r\n");
  EXPECT_EQ(Run("HSET h a 1"), ":1\r\n");
  EXPECT_EQ(Run("HGETALL h"), "%1\r\n$1\r\na\r\n$1\r\n1\r\n");
  EXPECT_EQ(Run("HMGET h a b"), "*2\r\n$1\r\n1\r\n_\r\n");
  EXPECT_EQ(Run("SADD s x"), ":1\r\n");
  EXPECT_EQ(Run("SMEMBERS s"), "~1\r\n$1\r\nx\r\n");
  EXPECT_EQ(Run("ZADD z 1.5 m"), ":1\r\n");
  EXPECT_EQ(Run("ZSCORE z m"), ",1.5\r\n");
  EXPECT_EQ(Run("ZRANGE z 0 -1 WITHSCORES"), "*1\r\n*2\r\n$1\r\nm\r\n,1.5\r\n");
  EXPECT_EQ(Run("INCRBYFLOAT f 1.5"), "$3\r\n1.5\r\n");  // a bulk in Redis 7.0 too
  EXPECT_EQ(Run("INFO server").substr(0, 1), "=");
  EXPECT_EQ(Run("MULTI"), "+OK\r\n");
  EXPECT_EQ(Run("ZSCORE z m"), "+QUEUED\r\n");
  EXPECT_EQ(Run("GET nokey"), "+QUEUED\r\n");
  EXPECT_EQ(Run("EXEC"), "*2\r\n,1.5\r\n_\r\n");
  EXPECT_EQ(Run("HELLO 2").substr(0, 5), "*14\r\n");
  EXPECT_EQ(Run("GET nokey"), "$-1\r\n");
  Run("HELLO 3");
  EXPECT_EQ(Run("RESET"), "+RESET\r\n");
  EXPECT_EQ(Run("GET nokey"), "$-1\r\n");
  EXPECT_EQ(Run("AUTH pw").substr(0, 38), "-ERR AUTH <password> called without an");
  EXPECT_EQ(Run("AUTH default pw"), "+OK\r\n");
  EXPECT_EQ(Run("AUTH a b c"), "-ERR syntax error\r\n");
}

TEST(Resp3, MalformedRepliesAreLeftUnchanged) {
  const std::string_view args[] = {"hgetall", "h"};
  for (std::string bad :
       {"*2\r\n$1\r\na\r\n", "*2\r\n$5\r\na\r\n$1\r\nb\r\n", "$x\r\n", "*1\r\n?\r\n", "*1"}) {
    std::string out = "+OK\r\n" + bad;
    EXPECT_FALSE(ConvertRepliesToResp3(args, &out, 5)) << bad;
    EXPECT_EQ(out, "+OK\r\n" + bad);
  }
}

TEST_F(CommandsTest, ValueCapAppliesToSetAndAppend) {
  const std::string big(1 << 20, 'x');
  std::string out;
  std::vector<std::string_view> args = {"SET", "k", big};
  ASSERT_TRUE(store_->WaitDurable(dispatcher_->Execute(session_, args, &out)).ok());
  EXPECT_EQ(out, "+OK\r\n");
  EXPECT_EQ(Run("APPEND k y"), "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
}

TEST_F(CommandsTest, FullLogGivesOomErrorAndKeepsData) {
  const std::string v(100 << 10, 'v');
  std::string last;
  int ok = 0;
  for (int i = 0; i < 100; ++i) {
    std::string out;
    const std::string key = "k" + std::to_string(i);
    std::vector<std::string_view> args = {"SET", key, v};
    ASSERT_TRUE(store_->WaitDurable(dispatcher_->Execute(session_, args, &out)).ok());
    if (out != "+OK\r\n") {
      last = out;
      break;
    }
    ++ok;
  }
  EXPECT_EQ(last.rfind("-OOM command not allowed: cosmos-kv log full", 0), 0u) << last;
  EXPECT_EQ(Run("DBSIZE"), ":" + std::to_string(ok) + "\r\n");
  EXPECT_EQ(Run("STRLEN k0"), ":" + std::to_string(100 << 10) + "\r\n");
}

TEST_F(CommandsTest, ReadsWaitForTheWritesTheyObserve) {
  std::string out;
  std::vector<std::string_view> set = {"SET", "k", "v"};
  const uint64_t wseq = dispatcher_->Execute(session_, set, &out);
  std::vector<std::string_view> get = {"GET", "k"};
  out.clear();
  const uint64_t rseq = dispatcher_->Execute(session_, get, &out);
  EXPECT_EQ(out, "$1\r\nv\r\n");
  EXPECT_GE(rseq, wseq);
  ASSERT_TRUE(store_->WaitDurable(rseq).ok());
}

}  // namespace
}  // namespace cosmos::kv

namespace cosmos::kv {
namespace {

// A memory device that answers DurableBackups as a replicated region would
// (or fails it), to test WAIT above the LogDevice interface.
class BackupsDevice final : public LogDevice {
 public:
  uint64_t Size() const override { return inner_.Size(); }
  std::string_view DurabilityLevel() const override { return inner_.DurabilityLevel(); }
  std::string_view BackendName() const override { return "replicated test device"; }
  Status Read(uint64_t offset, void* out, size_t len) override {
    return inner_.Read(offset, out, len);
  }
  Status Write(uint64_t offset, const void* data, size_t len) override {
    return inner_.Write(offset, data, len);
  }
  Status Flush(uint64_t offset, uint64_t len) override { return inner_.Flush(offset, len); }
  Status WriteAfterFlush(uint64_t offset, uint64_t value) override {
    return inner_.WriteAfterFlush(offset, value);
  }
  Result<uint32_t> DurableBackups() override {
    ++asked;
    return backups;
  }

  Result<uint32_t> backups = 2u;
  int asked = 0;

 private:
  MemoryLogDevice inner_{4 << 20};
};

std::string RunOn(Dispatcher& d, Store& store, ClientSession& session, const std::string& line) {
  RespParser p;
  size_t consumed;
  std::vector<std::string_view> args;
  std::string in = line + "\r\n";
  EXPECT_EQ(p.Parse(in, &consumed, &args), RespParser::Outcome::kCommand);
  std::string out;
  EXPECT_TRUE(store.WaitDurable(d.Execute(session, args, &out)).ok());
  return out;
}

TEST(CommandsWait, UnreplicatedStoreAnswersZero) {
  MemoryLogDevice dev(4 << 20);
  auto store = Store::Open(&dev);
  ASSERT_TRUE(store.ok());
  Dispatcher d(store->get(), DispatcherOptions{});
  ClientSession session;
  EXPECT_EQ(RunOn(d, **store, session, "SET k v"), "+OK\r\n");
  EXPECT_EQ(RunOn(d, **store, session, "WAIT 1 0"), ":0\r\n");
  EXPECT_EQ(RunOn(d, **store, session, "WAIT 0 100"), ":0\r\n");
  EXPECT_EQ(RunOn(d, **store, session, "WAIT 1 -1"), "-ERR timeout is negative\r\n");
  EXPECT_EQ(RunOn(d, **store, session, "WAIT x 0"),
            "-ERR value is not an integer or out of range\r\n");
}

TEST(CommandsWait, ReplicatedStoreAnswersTheDevicesBackups) {
  BackupsDevice dev;
  auto store = Store::Open(&dev);
  ASSERT_TRUE(store.ok());
  Dispatcher d(store->get(), DispatcherOptions{});
  ClientSession session;
  EXPECT_EQ(RunOn(d, **store, session, "SET k v"), "+OK\r\n");
  EXPECT_EQ(RunOn(d, **store, session, "WAIT 1 0"), ":2\r\n");
  EXPECT_EQ(dev.asked, 1);  // asked each time: the configuration may change
  dev.backups = 0u;         // a failover left the region without backups
  EXPECT_EQ(RunOn(d, **store, session, "WAIT 5 10"), ":0\r\n");
  // The confirming round trip failed: an error, never a count it did not get.
  dev.backups = Status::Unavailable("no configuration");
  const std::string reply = RunOn(d, **store, session, "WAIT 1 0");
  EXPECT_EQ(reply.rfind("-", 0), 0u) << reply;
  EXPECT_NE(reply.find("no configuration"), std::string::npos) << reply;
  // Argument errors are answered before the device is asked.
  const int asked = dev.asked;
  EXPECT_EQ(RunOn(d, **store, session, "WAIT 1 -1"), "-ERR timeout is negative\r\n");
  EXPECT_EQ(dev.asked, asked);
}

}  // namespace
}  // namespace cosmos::kv
