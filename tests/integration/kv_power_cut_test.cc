// Whole-process power loss for cosmos-kv: its data lives on
// cosmos-powercut-fs, which keeps every unsynced byte and name in memory.
// Writers send MSETs and record each +OK; after a fixed number of
// acknowledged writes the power is cut (everything unsynced dropped, every
// later file operation fails), cosmos-kv is SIGKILLed, and it restarts on a
// fresh mount of what was synced. Every acknowledged write must be there, and
// an unacknowledged one whole or absent. Unlike a SIGKILL alone, this fails
// when a sync (fdatasync, msync, the directory fsync of a new file) is missing.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "kv_crash_util.h"
#include "powercut_mount.h"

namespace cosmos::kv::testing {
namespace {

namespace fs = std::filesystem;
using powercut::PowercutMount;

// One writer: MSET pairs until a reply is not +OK; `acked` is read by the
// test thread to choose the cut point.
struct PowerWriter {
  WriterState state;
  std::atomic<int64_t> acked{0};
};

void WriteUntilFailure(int port, int id, PowerWriter* w) {
  RespClient c(port);
  if (!c.connected()) return;
  for (;;) {
    const int64_t i = w->state.next;
    const std::string v = ValueFor(id, i);
    w->state.in_flight = i;
    auto r = c.Call({"MSET", KeyFor(id, i, 'a'), v, KeyFor(id, i, 'b'), v});
    if (!r.has_value() || r->text != "OK") return;
    w->state.acked_below = i + 1;
    w->state.in_flight = -1;
    w->state.next = i + 1;
    w->acked.store(i + 1);
  }
}

// Runs cosmos-kv with `args(mountpoint)` through one power cut per entry of
// kCutAfter (acknowledged MSETs since the last restart), verifying after each
// reboot and once more at the end.
void RunPowerCuts(const std::string& name,
                  const std::function<std::vector<std::string>(const fs::path&)>& args) {
  if (std::string why = powercut::FuseUnavailableReason(); !why.empty()) GTEST_SKIP() << why;
  constexpr int kWriters = 3;
  // Deterministic cut points: right after the first acknowledgements (the
  // log file was just created), then after more and more.
  constexpr int64_t kCutAfter[] = {1, 3, 20, 150, 600};
  const fs::path dir = TestDir(name);
  const fs::path mnt = dir / "mnt";
  std::vector<PowerWriter> writers(kWriters);
  int cut_no = 0;
  auto boot = [&](std::unique_ptr<PowercutMount>* mount, std::unique_ptr<KvServer>* server) {
    *mount = std::make_unique<PowercutMount>(dir / "backing", mnt);
    std::string error;
    ASSERT_TRUE((*mount)->Mount(&error)) << error;
    *server = std::make_unique<KvServer>("", args(mnt));
    ASSERT_TRUE((*server)->Start()) << "cosmos-kv did not start after cut " << cut_no;
    for (int w = 0; w < kWriters; ++w) {
      Verify((*server)->port(), w, &writers[w].state, cut_no);
      if (::testing::Test::HasFatalFailure()) return;
    }
  };
  int64_t total = 0;
  for (const int64_t cut_after : kCutAfter) {
    std::unique_ptr<PowercutMount> mount;
    std::unique_ptr<KvServer> server;
    boot(&mount, &server);
    if (::testing::Test::HasFatalFailure()) return;
    int64_t start = 0;
    for (auto& w : writers) start += w.state.acked_below;
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
      writers[w].acked.store(writers[w].state.acked_below);
      threads.emplace_back(WriteUntilFailure, server->port(), w, &writers[w]);
    }
    // Wait for the cut point. The deadline is a hang guard only.
    int64_t acked = 0;
    for (int i = 0; i < 120000; ++i) {
      acked = -start;
      for (auto& w : writers) acked += w.acked.load();
      if (acked >= cut_after) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(mount->Cut());
    server->Kill(SIGKILL);
    for (auto& t : threads) t.join();
    ASSERT_GE(acked, cut_after) << "writers stalled before cut " << cut_no;
    EXPECT_GT(mount->Stat("fsyncs"), 0);
    std::printf("%s: cut %d after %lld acknowledged MSETs: %s", name.c_str(), cut_no,
                static_cast<long long>(acked), mount->StatsText().c_str());
    ASSERT_TRUE(mount->Unmount());
    total += acked;
    ++cut_no;
  }
  std::unique_ptr<PowercutMount> mount;
  std::unique_ptr<KvServer> server;
  boot(&mount, &server);  // verifies every acknowledged write once more
  if (::testing::Test::HasFatalFailure()) return;
  server->Kill(SIGTERM);
  server.reset();
  ASSERT_TRUE(mount->Unmount());
  std::printf("%s: %d power cuts, %lld acknowledged MSET pairs verified\n", name.c_str(), cut_no,
              static_cast<long long>(total));
  fs::remove_all(dir);
}

using Args = std::function<std::vector<std::string>(const fs::path&)>;

// One boot of `dir`'s store: mounts its backing directory, starts cosmos-kv,
// verifies what `writers` had acknowledged, lets them write until the cut
// that replaces the `n`th sync, SIGKILLs cosmos-kv and unmounts. With
// `from_start` the cut is armed before cosmos-kv starts (so it may hit the
// creation of its log or pool; nothing is verified: the store is new).
// n = 0: no cut, only the verification.
void CutCycle(const fs::path& dir, const Args& args, std::vector<PowerWriter>& writers, uint64_t n,
              bool from_start) {
  PowercutMount mount(dir / "backing", dir / "mnt");
  std::string error;
  ASSERT_TRUE(mount.Mount(&error)) << error;
  if (from_start) {
    ASSERT_TRUE(mount.CutAtSync(n));
  }
  KvServer server("", args(dir / "mnt"));
  const bool started = server.Start();
  if (from_start && !started) {
    ASSERT_EQ(mount.Stat("state"), 1)
        << "cosmos-kv did not start, without a cut (sync " << n << ")";
    ASSERT_TRUE(mount.Unmount());
    return;
  }
  ASSERT_TRUE(started) << "cosmos-kv did not start on what the last cut left";
  if (!from_start) {
    for (size_t w = 0; w < writers.size(); ++w) {
      Verify(server.port(), static_cast<int>(w), &writers[w].state, static_cast<int>(n));
      if (::testing::Test::HasFatalFailure()) return;
    }
    if (n == 0) {
      server.Kill(SIGTERM);
      ASSERT_TRUE(mount.Unmount());
      return;
    }
    ASSERT_TRUE(mount.CutAtSync(n));
  }
  std::vector<std::thread> threads;
  for (size_t w = 0; w < writers.size(); ++w) {
    threads.emplace_back(WriteUntilFailure, server.port(), static_cast<int>(w), &writers[w]);
  }
  // Each acknowledged MSET needs a sync, so the cut comes within n writes;
  // the deadline is a hang guard only.
  bool cut = false;
  for (int i = 0; i < 60000 && !(cut = mount.Stat("state") == 1); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server.Kill(SIGKILL);
  for (auto& t : threads) t.join();
  ASSERT_TRUE(cut) << "no cut at sync " << n << " within 60 s";
  ASSERT_TRUE(mount.Unmount());
}

// A power cut at every sync point: first while a new store is created (a
// fresh store per point, the cut armed before cosmos-kv starts: its log or
// pool file, the directory fsync, the first records), then on one store
// under writes, the cut replacing the 1st, 2nd, ... sync after each restart.
// Every restart must open what the cut left and hold every acknowledged write.
void RunSyncSweep(const std::string& name, const Args& args) {
  if (std::string why = powercut::FuseUnavailableReason(); !why.empty()) GTEST_SKIP() << why;
  constexpr int kCreationPoints = 20;  // cosmos-kv creating a file-backend store syncs 11 times
  constexpr int kSyncPoints = 30;
  int cuts_before_first_ack = 0;
  int64_t acked = 0;
  for (int n = 1; n <= kCreationPoints; ++n) {
    const fs::path dir = TestDir(name + "_create" + std::to_string(n));
    std::vector<PowerWriter> writers(2);
    CutCycle(dir, args, writers, static_cast<uint64_t>(n), /*from_start=*/true);
    if (::testing::Test::HasFatalFailure()) return;
    int64_t acked_here = 0;
    for (auto& w : writers) acked_here += w.state.acked_below;
    if (acked_here == 0) ++cuts_before_first_ack;
    CutCycle(dir, args, writers, 0, false);
    if (::testing::Test::HasFatalFailure()) return;
    acked += acked_here;
    fs::remove_all(dir);
  }
  const fs::path dir = TestDir(name);
  std::vector<PowerWriter> writers(2);
  for (int n = 1; n <= kSyncPoints; ++n) {
    CutCycle(dir, args, writers, static_cast<uint64_t>(n), /*from_start=*/false);
    if (::testing::Test::HasFatalFailure()) return;
  }
  CutCycle(dir, args, writers, 0, false);
  if (::testing::Test::HasFatalFailure()) return;
  for (auto& w : writers) acked += w.state.acked_below;
  std::printf(
      "%s: %d cuts from creation (%d before the first acknowledged write), %d under "
      "writes; %lld acknowledged MSET pairs verified\n",
      name.c_str(), kCreationPoints, cuts_before_first_ack, kSyncPoints,
      static_cast<long long>(acked));
  // The sweep reached the store's creation (sync 1 is part of it: no write
  // is acknowledged before the log or pool exists) and its writes.
  EXPECT_GT(cuts_before_first_ack, 0);
  EXPECT_GT(acked, 0);
  fs::remove_all(dir);
}

TEST(KvPowerCut, FileBackendCutAtEverySyncPoint) {
  RunSyncSweep("sync_sweep_file", [](const fs::path& mnt) {
    return std::vector<std::string>{"--backend",  "file", "--log", (mnt / "kv.log").string(),
                                    "--log-size", "4mb"};
  });
}

TEST(KvPowerCut, PoolBackendCutAtEverySyncPoint) {
  RunSyncSweep("sync_sweep_pool", [](const fs::path& mnt) {
    return std::vector<std::string>{
        "--pool", (mnt / "kv.pool").string(), "--pool-size", "12mb", "--region-size", "4mb"};
  });
}

TEST(KvPowerCut, FileBackendLosesNoAcknowledgedWrite) {
  RunPowerCuts("power_cut_file", [](const fs::path& mnt) {
    return std::vector<std::string>{"--backend",  "file", "--log", (mnt / "kv.log").string(),
                                    "--log-size", "16mb"};
  });
}

// The default backend: a region of a local pool file, written through a
// shared mmap and made durable with msync(MS_SYNC).
TEST(KvPowerCut, PoolBackendLosesNoAcknowledgedWrite) {
  RunPowerCuts("power_cut_pool", [](const fs::path& mnt) {
    return std::vector<std::string>{
        "--pool", (mnt / "kv.pool").string(), "--pool-size", "24mb", "--region-size", "16mb"};
  });
}

}  // namespace
}  // namespace cosmos::kv::testing
