// Crash tests: SIGKILL cosmosd at random moments while a client writes,
// flushes and appends to the remote log; restart it on the same pool; every
// acknowledged flush must be present byte-exact and the log must recover to a
// prefix holding every acknowledged record.
// What this proves and what not: cosmosd's process dies at arbitrary points
// (mid-batch, mid-msync, between flush and tail update); the page cache of
// the machine survives, as it does when only the daemon crashes. Power loss
// is covered by the pool layer's fault-injection tests, not here.
// COSMOS_RPM_CRASH_KILLS overrides the number of kills (scripts/soak_rpm.sh).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <random>

#include "common/clock.h"
#include "cosmos/client.h"
#include "remote_log.h"
#include "rpm_harness.h"

namespace {

using cosmos::Status;

constexpr uint64_t kBlock = 512;
constexpr uint64_t kBlocksRegionSize = 4 << 20;

std::vector<std::byte> BlockContent(uint64_t block, uint64_t version) {
  std::vector<std::byte> v(kBlock);
  std::mt19937_64 rng(block * 1000003 + version);
  for (auto& b : v) b = std::byte(static_cast<uint8_t>(rng()));
  return v;
}

int Kills() {
  const char* env = std::getenv("COSMOS_RPM_CRASH_KILLS");
  if (env != nullptr && std::atoi(env) > 0) return std::atoi(env);
  return 100;
}

std::unique_ptr<cosmos::Client> Connect(const rpm_test::Daemon& d) {
  cosmos::ClientOptions o;
  o.server = d.address();
  o.timeout_ms = 250;
  auto c = cosmos::Client::Connect(o);
  return c.ok() ? std::move(*c) : nullptr;
}

TEST(RpmCrash, AcknowledgedFlushesAndLogRecordsSurviveRepeatedSigkill) {
  rpm_test::TempDir dir;
  const std::vector<std::string> args = {"--workers", "1", "--pool",
                                         dir.path + "/crash.pool,size=24,create"};
  std::mt19937_64 rng(20261122);
  // Acknowledged state: block -> version whose flush was acknowledged.
  std::map<uint64_t, uint64_t> acked_blocks;
  uint64_t acked_log_seq = 0;
  uint64_t next_block = 0;
  uint64_t total_appends = 0, total_flushes = 0, interrupted = 0;
  const int kills = Kills();

  {
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir.path, args));
    auto c = Connect(d);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->CreateRegion("blocks", kBlocksRegionSize).ok());
    ASSERT_TRUE(c->CreateRegion("log", 8 << 20).ok());
  }

  for (int kill_no = 0; kill_no < kills; ++kill_no) {
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir.path, args)) << "restart " << kill_no;
    auto c = Connect(d);
    ASSERT_TRUE(c) << "connect after restart " << kill_no;
    auto blocks = c->OpenRegion("blocks");
    auto logr = c->OpenRegion("log");
    ASSERT_TRUE(blocks.ok() && logr.ok());

    // Check everything acknowledged so far.
    for (const auto& [block, version] : acked_blocks) {
      std::vector<std::byte> out(kBlock);
      ASSERT_TRUE((*blocks)->Read(block * kBlock, out).ok());
      ASSERT_EQ(out, BlockContent(block, version))
          << "acknowledged flush of block " << block << " lost after kill " << kill_no;
    }
    auto log = remote_log::RemoteLog::Open(logr->get());
    ASSERT_TRUE(log.ok()) << log.status() << " after kill " << kill_no;
    ASSERT_GE((*log)->next_sequence(), acked_log_seq + 1)
        << "acknowledged log record lost after kill " << kill_no;
    if ((*log)->tail() > (7u << 20)) break;  // log region nearly full: enough kills done

    // Kill at a random moment while the client keeps working.
    const uint64_t delay_us = 1000 + rng() % 25000;
    std::atomic<bool> killed{false};
    pid_t pid = d.pid();
    std::thread killer([pid, delay_us, &killed] {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      kill(pid, SIGKILL);
      killed = true;
    });
    uint64_t version = static_cast<uint64_t>(kill_no) + 1;
    for (;;) {
      bool ok = true;
      if (rng() % 2 == 0) {
        std::vector<std::byte> payload(16 + rng() % 300, std::byte(static_cast<uint8_t>(kill_no)));
        auto seq = (*log)->Append(payload);
        if (seq.ok()) {
          acked_log_seq = *seq;
          ++total_appends;
        } else {
          ok = false;
        }
      } else {
        // A few blocks: some new, some overwrites of acknowledged ones.
        uint64_t block = (rng() % 3 == 0 && !acked_blocks.empty())
                             ? std::next(acked_blocks.begin(), rng() % acked_blocks.size())->first
                             : (next_block++ % (kBlocksRegionSize / kBlock));
        auto content = BlockContent(block, version);
        Status s = (*blocks)->Write(block * kBlock, content);
        if (s.ok()) s = (*blocks)->Flush(block * kBlock, kBlock);
        if (s.ok()) {
          acked_blocks[block] = version;
          ++total_flushes;
        } else {
          // Unacknowledged overwrite: the block may now hold either version,
          // so stop asserting on it.
          acked_blocks.erase(block);
          ok = false;
        }
      }
      if (!ok) {
        ++interrupted;
        break;
      }
      if (killed.load()) {
        // Give the next op the chance to fail; if the loop keeps succeeding
        // something is wrong with the kill.
        continue;
      }
    }
    killer.join();
    int status = d.Stop(SIGKILL);
    ASSERT_TRUE(WIFSIGNALED(status)) << "cosmosd should have died by SIGKILL";
  }
  std::printf(
      "rpm crash: %d kills, %llu acknowledged appends, %llu acknowledged flushes, "
      "%llu interrupted operations\n",
      kills, static_cast<unsigned long long>(total_appends),
      static_cast<unsigned long long>(total_flushes), static_cast<unsigned long long>(interrupted));
  EXPECT_GT(total_appends, 0u);
  EXPECT_GT(total_flushes, 0u);
}

}  // namespace
