// SIGKILL crash test: cosmos-kv is killed repeatedly under concurrent write
// load; after each restart every acknowledged write must be present with its
// exact value, and an unacknowledged write is either absent or whole (an
// MSET pair is never half-present). Run on the local-file backend (50 kills)
// and on the default backend, a region of a local pmem pool file.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>

#include "kv_crash_util.h"

namespace cosmos::kv::testing {
namespace {

int KillsFromEnv(int fallback) {
  const char* v = std::getenv("COSMOS_KV_CRASH_KILLS");
  return v != nullptr ? std::atoi(v) : fallback;
}

// Kills `server` `kills` times under load from kWriters writers; verifies
// after each restart and once more at the end.
void RunCrashLoop(KvServer& server, int kills, const char* label) {
  constexpr int kWriters = 3;
  std::vector<WriterState> states(kWriters);
  std::mt19937 rng(42);
  int64_t total_acked = 0;
  for (int k = 0; k < kills; ++k) {
    ASSERT_TRUE(server.Start()) << "restart " << k << " failed";
    for (int w = 0; w < kWriters; ++w) Verify(server.port(), w, &states[w], k);
    if (::testing::Test::HasFatalFailure()) return;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back(Writer, server.port(), w, &states[w], &stop);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(40 + rng() % 80));
    server.Kill(SIGKILL);
    stop = true;
    for (auto& t : writers) t.join();
  }
  ASSERT_TRUE(server.Start());
  for (int w = 0; w < kWriters; ++w) {
    Verify(server.port(), w, &states[w], kills);
    total_acked += states[w].acked_below;
  }
  EXPECT_GT(total_acked, kills);  // the load really ran between kills
  std::printf("kv crash test (%s): %d kills, %lld acknowledged MSET pairs verified\n", label, kills,
              static_cast<long long>(total_acked));
  server.Kill(SIGTERM);
}

TEST(KvCrash, SigkillUnderConcurrentWritesLosesNoAcknowledgedWrite) {
  const auto dir = TestDir("crash");
  KvServer server((dir / "kv.log").string(), {"--log-size", "64mb"});
  RunCrashLoop(server, KillsFromEnv(50), "local-file backend");
  std::filesystem::remove_all(dir);
}

// The same on the default backend: no --backend, no --log, only the pool
// file (a region of a local COSMOS pmem pool; durability "page" on a regular
// file system).
TEST(KvCrash, DefaultPoolBackendSigkillLosesNoAcknowledgedWrite) {
  const auto dir = TestDir("crash_pool");
  KvServer server(
      "", {"--pool", (dir / "kv.pool").string(), "--pool-size", "72mb", "--region-size", "64mb"});
  RunCrashLoop(server, KillsFromEnv(50), "default pool backend");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cosmos::kv::testing
