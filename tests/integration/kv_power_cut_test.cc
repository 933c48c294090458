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
