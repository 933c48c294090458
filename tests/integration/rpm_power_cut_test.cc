// Whole-process power loss for cosmosd: its pool file lives on
// cosmos-powercut-fs, which keeps every unsynced byte and name in memory. A
// client writes and flushes blocks of a plain or a secure region (one or
// two ranges per flush), advances a tail word with write_after_flush and
// two counters with fetch_add and compare_and_swap; after a fixed number of
// acknowledged flushes it leaves one write unflushed, the power is cut
// (everything unsynced dropped, every later file operation fails) and
// cosmosd is SIGKILLed. cosmosd restarts on a fresh mount of what was synced:
// every acknowledged flush and tail must be there, the unflushed block old or
// new, and a secure region must open and read without an integrity error.
// The secure region's trusted counter (--enclave-state) stays on the real
// file system: it stands for hardware that keeps its own state.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "cosmos/client.h"
#include "powercut_mount.h"
#include "rpm_harness.h"
#include "sec/key_files.h"

namespace {

namespace fs = std::filesystem;
using cosmos::Status;
using cosmos::powercut::PowercutMount;

constexpr uint64_t kBlock = 512;
constexpr uint64_t kRegionSize = 256 << 10;
constexpr uint64_t kBlocks = kRegionSize / kBlock;  // block 0 holds the tail word

std::vector<std::byte> BlockContent(uint64_t block, uint64_t version) {
  std::vector<std::byte> v(kBlock);
  std::mt19937_64 rng(block * 1000003 + version);
  for (auto& b : v) b = std::byte(static_cast<uint8_t>(rng()));
  return v;
}

class RpmPowerCut : public ::testing::TestWithParam<bool> {
 protected:
  bool secure() const { return GetParam(); }

  void SetUp() override {
    if (std::string why = cosmos::powercut::FuseUnavailableReason(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    mnt_ = fs::path(dir_.path) / "mnt";
    args_ = {"--listen", "127.0.0.1", "--workers",
             "1",        "--pool",    "main=" + (mnt_ / "node.pool").string() + ",size=24M,create"};
    if (secure()) {
      ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir_.path + "/node").ok());
      ASSERT_TRUE(cosmos::sec::GenerateClientCredentials(dir_.path + "/clients", "alice").ok());
      for (std::string a : {"--platform-keys", "node", "--allow", "clients/alice.pub"}) {
        args_.push_back(a == "node" || a == "clients/alice.pub" ? dir_.path + "/" + a : a);
      }
      args_.push_back("--require-secure");
    }
  }

  // timeout_ms: a hang guard where the node is never killed mid-call.
  std::unique_ptr<cosmos::Client> Connect(const rpm_test::Daemon& d, uint32_t timeout_ms = 10000) {
    cosmos::ClientOptions o;
    o.server = d.address();
    o.timeout_ms = timeout_ms;
    if (secure()) {
      o.platform_public_key_file = dir_.path + "/node/platform.pub";
      o.measurement_file = dir_.path + "/node/measurement";
      o.client_key_file = dir_.path + "/clients/alice.key";
    }
    auto c = cosmos::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  rpm_test::TempDir dir_;
  fs::path mnt_;
  std::vector<std::string> args_;
};

TEST_P(RpmPowerCut, AcknowledgedFlushesSurvivePowerCuts) {
  // Deterministic cut points: acknowledged flushes since the last restart.
  constexpr int kCutAfter[] = {1, 4, 32, 160};
  std::mt19937_64 rng(20261203);
  std::map<uint64_t, uint64_t> acked;  // block -> version whose flush was acknowledged
  uint64_t acked_tail = 0, total = 0;
  uint64_t acked_adds = 0, acked_swaps = 0;  // fetch_add and compare_and_swap words
  int64_t unflushed_block = -1;              // written, never flushed: old (zero) or new
  uint64_t unflushed_version = 0;
  int unflushed_lost = 0;
  const int cycles = static_cast<int>(std::size(kCutAfter));
  for (int cycle = 0; cycle <= cycles; ++cycle) {
    PowercutMount mount(fs::path(dir_.path) / "backing", mnt_);
    std::string error;
    ASSERT_TRUE(mount.Mount(&error)) << error;
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir_.path, args_)) << "cosmosd did not start after cut " << cycle;
    auto c = Connect(d);
    ASSERT_TRUE(c);
    if (cycle == 0) {
      auto info = c->CreateRegion("blocks", kRegionSize, {.secure = secure()});
      ASSERT_TRUE(info.ok()) << info.status();
    }
    auto r = c->OpenRegion("blocks");
    ASSERT_TRUE(r.ok()) << r.status() << " after cut " << cycle;
    ASSERT_EQ((*r)->info().secure, secure());

    // Everything acknowledged is there; the whole region reads (a secure
    // region passes its integrity and freshness checks).
    std::vector<std::byte> all(kRegionSize);
    Status whole = (*r)->Read(0, all);
    ASSERT_TRUE(whole.ok()) << whole << " after cut " << cycle;
    uint64_t tail = 0;
    std::memcpy(&tail, all.data(), sizeof(tail));
    ASSERT_GE(tail, acked_tail) << "acknowledged write_after_flush lost after cut " << cycle;
    uint64_t adds = 0, swaps = 0;
    std::memcpy(&adds, all.data() + 8, sizeof(adds));
    std::memcpy(&swaps, all.data() + 16, sizeof(swaps));
    ASSERT_EQ(adds, acked_adds) << "acknowledged fetch_add lost after cut " << cycle;
    ASSERT_EQ(swaps, acked_swaps) << "acknowledged compare_and_swap lost after cut " << cycle;
    for (const auto& [block, version] : acked) {
      ASSERT_EQ(
          std::memcmp(all.data() + block * kBlock, BlockContent(block, version).data(), kBlock), 0)
          << "acknowledged flush of block " << block << " lost after cut " << cycle;
    }
    if (unflushed_block >= 0) {
      const std::byte* b = all.data() + unflushed_block * kBlock;
      const bool is_new =
          std::memcmp(b, BlockContent(unflushed_block, unflushed_version).data(), kBlock) == 0;
      const bool is_old = std::all_of(b, b + kBlock, [](std::byte x) { return x == std::byte{0}; });
      ASSERT_TRUE(is_new || is_old) << "unflushed block " << unflushed_block << " torn";
      if (is_new) acked[unflushed_block] = unflushed_version;
      if (!is_new) ++unflushed_lost;
      unflushed_block = -1;
    }
    if (cycle == cycles) break;

    const uint64_t version = static_cast<uint64_t>(cycle) + 1;
    for (int i = 0; i < kCutAfter[cycle]; ++i) {
      const uint64_t block = 1 + rng() % (kBlocks - 2);
      const uint64_t block2 = 1 + rng() % (kBlocks - 2);
      ASSERT_TRUE((*r)->Write(block * kBlock, BlockContent(block, version)).ok());
      Status s;
      if (i % 2 == 1 && block2 != block) {
        // Two ranges in one flush: the node flushes each, then drains once.
        ASSERT_TRUE((*r)->Write(block2 * kBlock, BlockContent(block2, version)).ok());
        const cosmos::Range ranges[] = {{block * kBlock, kBlock}, {block2 * kBlock, kBlock}};
        s = (*r)->Flush(ranges);
        ASSERT_TRUE(s.ok()) << s;
        acked[block2] = version;
      } else {
        s = (*r)->Flush(block * kBlock, kBlock);
        ASSERT_TRUE(s.ok()) << s;
      }
      acked[block] = version;
      s = (*r)->WriteAfterFlush(0, total + 1);
      ASSERT_TRUE(s.ok()) << s;
      acked_tail = ++total;
      // Atomics are durable on return; none is ever left unacknowledged.
      auto added = (*r)->FetchAdd(8, 1);
      ASSERT_TRUE(added.ok()) << added.status();
      ASSERT_EQ(*added, acked_adds++);
      auto swapped = (*r)->CompareAndSwap(16, acked_swaps, acked_swaps + 1);
      ASSERT_TRUE(swapped.ok()) << swapped.status();
      ASSERT_EQ(*swapped, acked_swaps++);
    }
    // The last acknowledged call before the cut is a two-range flush (no
    // later sync of the node can cover for a missing drain).
    {
      const uint64_t a = 1 + rng() % (kBlocks - 2), b = 1 + (a % (kBlocks - 2));
      ASSERT_TRUE((*r)->Write(a * kBlock, BlockContent(a, version)).ok());
      ASSERT_TRUE((*r)->Write(b * kBlock, BlockContent(b, version)).ok());
      const cosmos::Range ranges[] = {{a * kBlock, kBlock}, {b * kBlock, kBlock}};
      Status s = (*r)->Flush(ranges);
      ASSERT_TRUE(s.ok()) << s;
      acked[a] = version;
      acked[b] = version;
    }
    // The last block is only ever written without a flush (never acknowledged).
    unflushed_block = static_cast<int64_t>(kBlocks - 1);
    unflushed_version = version;
    ASSERT_TRUE((*r)->Write((kBlocks - 1) * kBlock, BlockContent(kBlocks - 1, version)).ok());
    ASSERT_TRUE(mount.Cut());
    d.Stop(SIGKILL);
    std::printf("%s region: cut %d after %d acknowledged flushes: %s",
                secure() ? "secure" : "plain", cycle, kCutAfter[cycle], mount.StatsText().c_str());
    r->reset();
    c.reset();
    ASSERT_TRUE(mount.Unmount());
  }
  std::printf(
      "%s region: %d power cuts, %llu acknowledged flushes verified, %d of %d unflushed writes "
      "lost\n",
      secure() ? "secure" : "plain", cycles, static_cast<unsigned long long>(total), unflushed_lost,
      cycles);
  // Proof that the cuts drop data at all: no flush ever covered the last
  // block, so its page never reached an fsync. If it always survived, a
  // missing sync could not fail this test either.
  EXPECT_GT(unflushed_lost, 0);
}

// What the client knows of the region after its acknowledged operations;
// an operation that failed at a cut is "in doubt": old or new.
struct NodeState {
  std::map<uint64_t, uint64_t> acked;  // block -> version whose flush was acknowledged
  uint64_t tail = 0, adds = 0, swaps = 0;
  bool adds_in_doubt = false, swaps_in_doubt = false;

  // Checks a whole-region image; adopts the outcome of in-doubt atomics.
  void Check(const std::vector<std::byte>& all, uint64_t n) {
    uint64_t tail_now = 0, adds_now = 0, swaps_now = 0;
    std::memcpy(&tail_now, all.data(), 8);
    std::memcpy(&adds_now, all.data() + 8, 8);
    std::memcpy(&swaps_now, all.data() + 16, 8);
    ASSERT_GE(tail_now, tail) << "acknowledged write_after_flush lost, cut at sync " << n;
    ASSERT_TRUE(adds_now == adds || (adds_in_doubt && adds_now == adds + 1))
        << "fetch_add word " << adds_now << ", acknowledged " << adds << ", cut at sync " << n;
    ASSERT_TRUE(swaps_now == swaps || (swaps_in_doubt && swaps_now == swaps + 1))
        << "compare_and_swap word " << swaps_now << ", acknowledged " << swaps << ", cut at sync "
        << n;
    tail = tail_now;
    adds = adds_now;
    swaps = swaps_now;
    adds_in_doubt = swaps_in_doubt = false;
    for (const auto& [block, version] : acked) {
      ASSERT_EQ(
          std::memcmp(all.data() + block * kBlock, BlockContent(block, version).data(), kBlock), 0)
          << "acknowledged flush of block " << block << " lost, cut at sync " << n;
    }
  }

  // One round of every operation; false at the first failure (the cut).
  bool Round(cosmos::Region& r, uint64_t version, std::mt19937_64& rng, bool two_ranges) {
    const uint64_t block = 1 + rng() % (kBlocks - 2);
    const uint64_t block2 = 1 + rng() % (kBlocks - 2);
    acked.erase(block);  // in doubt until the flush is acknowledged
    acked.erase(block2);
    if (!r.Write(block * kBlock, BlockContent(block, version)).ok()) return false;
    if (two_ranges && block2 != block) {
      if (!r.Write(block2 * kBlock, BlockContent(block2, version)).ok()) return false;
      const cosmos::Range ranges[] = {{block * kBlock, kBlock}, {block2 * kBlock, kBlock}};
      if (!r.Flush(ranges).ok()) return false;
      acked[block2] = version;
    } else if (!r.Flush(block * kBlock, kBlock).ok()) {
      return false;
    }
    acked[block] = version;
    if (!r.WriteAfterFlush(0, tail + 1).ok()) return false;
    ++tail;
    adds_in_doubt = true;
    auto added = r.FetchAdd(8, 1);
    if (!added.ok()) return false;
    EXPECT_EQ(*added, adds);
    ++adds;
    adds_in_doubt = false;
    swaps_in_doubt = true;
    auto swapped = r.CompareAndSwap(16, swaps, swaps + 1);
    if (!swapped.ok()) return false;
    EXPECT_EQ(*swapped, swaps);
    ++swaps;
    swaps_in_doubt = false;
    return true;
  }
};

// The node's sync points: after each restart the cut replaces the nth sync
// from the moment the region is open (n = 1..kSyncPoints), in the middle of
// whichever call reached it. The call in flight fails; everything
// acknowledged before it must survive, and its own effect is old or new.
TEST_P(RpmPowerCut, CutAtEverySyncPointKeepsAcknowledgedOperations) {
  constexpr uint64_t kSyncPoints = 16;
  std::mt19937_64 rng(20261204);
  NodeState st;
  int failed_calls = 0;
  for (uint64_t n = 0; n <= kSyncPoints + 1; ++n) {
    PowercutMount mount(fs::path(dir_.path) / "backing", mnt_);
    std::string error;
    ASSERT_TRUE(mount.Mount(&error)) << error;
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir_.path, args_)) << "cosmosd did not start, cut at sync " << n - 1;
    auto c = Connect(d, 3000);  // a node that died at the cut fails the call after 3 s
    ASSERT_TRUE(c);
    if (n == 0) {  // cycle 0 creates the region; no cut
      auto info = c->CreateRegion("blocks", kRegionSize, {.secure = secure()});
      ASSERT_TRUE(info.ok()) << info.status();
    }
    auto r = c->OpenRegion("blocks");
    ASSERT_TRUE(r.ok()) << r.status() << ", cut at sync " << n - 1;
    std::vector<std::byte> all(kRegionSize);
    Status whole = (*r)->Read(0, all);
    ASSERT_TRUE(whole.ok()) << whole << ", cut at sync " << n - 1;
    st.Check(all, n - 1);
    if (::testing::Test::HasFatalFailure() || n > kSyncPoints) break;
    if (n > 0) {
      ASSERT_TRUE(mount.CutAtSync(n));
    }
    const uint64_t version = n + 1;
    for (int i = 0; n == 0 ? i < 4 : mount.Stat("state") != 1; ++i) {
      ASSERT_LT(i, 10000) << "no cut at sync " << n;
      if (!st.Round(**r, version, rng, i % 2 == 1)) {
        ++failed_calls;
        break;
      }
    }
    if (n > 0) {
      ASSERT_EQ(mount.Stat("state"), 1);
    }
    d.Stop(SIGKILL);
    r->reset();
    c.reset();
    ASSERT_TRUE(mount.Unmount());
  }
  std::printf(
      "%s region: cut at syncs 1..%llu, %d calls failed at the cut, %llu acknowledged "
      "write_after_flush\n",
      secure() ? "secure" : "plain", static_cast<unsigned long long>(kSyncPoints), failed_calls,
      static_cast<unsigned long long>(st.tail));
  EXPECT_EQ(failed_calls, static_cast<int>(kSyncPoints));  // every cut hit a call
}

INSTANTIATE_TEST_SUITE_P(Regions, RpmPowerCut, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Secure" : "Plain"; });

}  // namespace
