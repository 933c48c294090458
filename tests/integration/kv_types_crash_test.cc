// SIGKILL crash test for the data types and EXEC: writers run transactions
// that touch a hash, a list, a set, a sorted set and a counter together;
// cosmos-kv is killed under load and restarted. After every restart each
// writer's five structures hold exactly the same number of elements (no
// EXEC half applied), at least every acknowledged EXEC and at most the one
// in flight. Power loss (dropping unsynced data) is covered by
// TypedCommandsCrash in src/kv/typed_commands_test.cc. A second test does
// the same to a queue fed by MULTI/EXEC and drained by BLPOP.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>

#include "kv_test_util.h"

namespace cosmos::kv::testing {
namespace {

struct TxWriter {
  int64_t acked = 0;  // EXECs acknowledged (the counter's value after them)
};

std::string Key(int w, const char* what) { return "w" + std::to_string(w) + ":" + what; }

// Runs MULTI ... EXEC transactions until the connection dies.
void RunTransactions(int port, int w, TxWriter* st, std::atomic<bool>* stop) {
  RespClient c(port);
  if (!c.connected()) return;
  while (!stop->load()) {
    const std::string i = std::to_string(st->acked + 1);
    const std::vector<std::vector<std::string>> cmds = {
        {"MULTI"},
        {"HSET", Key(w, "h"), "f" + i, i},
        {"RPUSH", Key(w, "l"), i},
        {"SADD", Key(w, "s"), i},
        {"ZADD", Key(w, "z"), i, "m" + i},
        {"INCR", Key(w, "n")},
        {"EXEC"},
    };
    std::optional<Reply> r;
    for (const auto& cmd : cmds) {
      r = c.Call(cmd);
      if (!r.has_value()) return;
    }
    if (r->type != '*' || r->elements.size() != 5) return;
    ++st->acked;
  }
}

int64_t IntReply(RespClient& c, const std::vector<std::string>& cmd) {
  auto r = c.Call(cmd);
  EXPECT_TRUE(r.has_value());
  if (!r.has_value() || r->null) return 0;
  return std::stoll(r->text);
}

void Verify(int port, int w, TxWriter* st, int kill_no) {
  RespClient c(port);
  ASSERT_TRUE(c.connected());
  const int64_t n = IntReply(c, {"GET", Key(w, "n")});
  ASSERT_GE(n, st->acked) << "kill " << kill_no << ": an acknowledged EXEC was lost";
  ASSERT_LE(n, st->acked + 1) << "kill " << kill_no;
  EXPECT_EQ(IntReply(c, {"HLEN", Key(w, "h")}), n) << "kill " << kill_no << ": EXEC half applied";
  EXPECT_EQ(IntReply(c, {"LLEN", Key(w, "l")}), n) << "kill " << kill_no;
  EXPECT_EQ(IntReply(c, {"SCARD", Key(w, "s")}), n) << "kill " << kill_no;
  EXPECT_EQ(IntReply(c, {"ZCARD", Key(w, "z")}), n) << "kill " << kill_no;
  if (n > 0) {
    auto last = c.Call({"LINDEX", Key(w, "l"), "-1"});
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->text, std::to_string(n));
  }
  st->acked = n;  // an in-flight EXEC that survived counts from now on
}

TEST(KvTypesCrash, SigkillNeverLosesOrHalfAppliesAnExec) {
  const char* env = std::getenv("COSMOS_KV_TYPES_CRASH_KILLS");
  const int kills = env != nullptr ? std::atoi(env) : 15;
  const auto dir = TestDir("types_crash");
  KvServer server(
      "", {"--pool", (dir / "kv.pool").string(), "--pool-size", "72mb", "--region-size", "64mb"});
  constexpr int kWriters = 2;
  std::vector<TxWriter> states(kWriters);
  std::mt19937 rng(7);
  for (int k = 0; k <= kills; ++k) {
    ASSERT_TRUE(server.Start()) << "restart " << k << " failed";
    for (int w = 0; w < kWriters; ++w) Verify(server.port(), w, &states[w], k);
    if (::testing::Test::HasFatalFailure() || k == kills) break;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back(RunTransactions, server.port(), w, &states[w], &stop);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(40 + rng() % 80));
    server.Kill(SIGKILL);
    stop = true;
    for (auto& t : writers) t.join();
  }
  int64_t total = 0;
  for (const auto& s : states) total += s.acked;
  EXPECT_GT(total, kills);  // the load really ran between kills
  std::printf("kv types crash test: %d kills, %lld EXECs verified\n", kills,
              static_cast<long long>(total));
  server.Kill(SIGTERM);
  std::filesystem::remove_all(dir);
}

// A producer appends numbered items (MULTI: RPUSH q i, SET last i, EXEC) and
// a consumer takes them with BLPOP, parked whenever the list is empty, while
// cosmos-kv is SIGKILLed. After every restart the list holds exactly the
// items pushed and not popped: no acknowledged push lost, no acknowledged
// pop undone, consecutive, at most the one push and one pop in flight
// either way. The consumer sees every item once, in order.
struct Queue {
  int64_t pushed = 0;  // last acknowledged push
  int64_t popped = 0;  // last acknowledged pop
  std::atomic<bool> out_of_order{false};
};

void Produce(int port, Queue* q, std::atomic<bool>* stop) {
  RespClient c(port);
  if (!c.connected()) return;
  while (!stop->load()) {
    const std::string i = std::to_string(q->pushed + 1);
    std::optional<Reply> r;
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"MULTI"}, {"RPUSH", "q", i}, {"SET", "last", i}, {"EXEC"}}) {
      r = c.Call(cmd);
      if (!r.has_value()) return;
    }
    if (r->type != '*' || r->elements.size() != 2) return;
    ++q->pushed;
    if (q->pushed % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Consume(int port, Queue* q, std::atomic<bool>* stop) {
  RespClient c(port);
  if (!c.connected()) return;
  while (!stop->load()) {
    auto r = c.Call({"BLPOP", "q", "1"});
    if (!r.has_value()) return;
    if (r->null || r->elements.size() != 2) continue;  // timed out
    const int64_t item = std::stoll(r->elements[1].text);
    if (item != q->popped + 1) q->out_of_order = true;
    q->popped = item;
  }
}

TEST(KvTypesCrash, SigkillNeverLosesAPushOrUndoesABlockingPop) {
  const char* env = std::getenv("COSMOS_KV_TYPES_CRASH_KILLS");
  const int kills = env != nullptr ? std::atoi(env) : 10;
  const auto dir = TestDir("queue_crash");
  KvServer server(
      "", {"--pool", (dir / "kv.pool").string(), "--pool-size", "72mb", "--region-size", "64mb"});
  Queue q;
  std::mt19937 rng(11);
  int64_t served = 0;
  for (int k = 0; k <= kills; ++k) {
    ASSERT_TRUE(server.Start()) << "restart " << k << " failed";
    {
      RespClient c(server.port());
      ASSERT_TRUE(c.connected());
      const int64_t last = IntReply(c, {"GET", "last"});
      ASSERT_GE(last, q.pushed) << "kill " << k << ": an acknowledged push was lost";
      ASSERT_LE(last, q.pushed + 1) << "kill " << k;
      auto items = c.Call({"LRANGE", "q", "0", "-1"});
      ASSERT_TRUE(items.has_value());
      if (!items->elements.empty()) {
        const int64_t first = std::stoll(items->elements.front().text);
        ASSERT_GE(first, q.popped + 1) << "kill " << k << ": an acknowledged pop came back";
        ASSERT_LE(first, q.popped + 2) << "kill " << k;
        for (size_t i = 0; i < items->elements.size(); ++i) {
          ASSERT_EQ(std::stoll(items->elements[i].text), first + static_cast<int64_t>(i))
              << "kill " << k << ": the queue has a hole";
        }
        ASSERT_EQ(first + static_cast<int64_t>(items->elements.size()) - 1, last) << "kill " << k;
        q.popped = first - 1;
      } else {
        ASSERT_LE(last, q.popped + 1) << "kill " << k << ": pushed items vanished";
        q.popped = last;
      }
      q.pushed = last;
    }
    ASSERT_FALSE(q.out_of_order.load()) << "BLPOP served an item twice or out of order";
    if (k == kills) break;
    const int64_t popped_before = q.popped;
    std::atomic<bool> stop{false};
    std::thread consumer(Consume, server.port(), &q, &stop);
    std::thread producer(Produce, server.port(), &q, &stop);
    std::this_thread::sleep_for(std::chrono::milliseconds(60 + rng() % 80));
    server.Kill(SIGKILL);
    stop = true;
    producer.join();
    consumer.join();
    served += q.popped - popped_before;
  }
  EXPECT_GT(served, kills);  // the consumer really popped between kills
  std::printf("kv queue crash test: %d kills, %lld items popped by BLPOP\n", kills,
              static_cast<long long>(served));
  server.Kill(SIGTERM);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cosmos::kv::testing
