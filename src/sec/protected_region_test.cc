// Tests of the protected region engine: round trips, every tamper case
// (detected as IntegrityViolation, never wrong data, never a crash), crash
// consistency at every persist point, key rotation, counter modes, Verify.
#include "sec/protected_region.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>

namespace cosmos::sec {
namespace {

constexpr uint32_t kBlock = 512;

// The binding tests use for region `id` (pool "pool-test", name "r<id>").
RegionBinding B(uint64_t id) { return {"pool-test", id, "r" + std::to_string(id)}; }
constexpr uint64_t kBlocks = 64;

// A counter whose waits block on a gate (fake clock, no timing): while the
// gate is closed no value can become stable, and a test can wait until a
// given number of threads sleep in the counter.
class CounterGate {
 public:
  std::unique_ptr<SimulatedCounter> OpenCounter(const std::string& path) {
    SimulatedCounter::Options o;
    o.path = path;
    o.stabilisation_delay_ns = 1000;
    o.now_ns = [this] { return now_.load(); };
    o.sleep_ns = [this](uint64_t ns) {
      std::unique_lock l(mu_);
      ++sleeping_;
      cv_.notify_all();
      cv_.wait(l, [&] { return open_; });
      --sleeping_;
      now_ += ns;
    };
    return std::move(*SimulatedCounter::Open(o));
  }
  void Close() {
    std::lock_guard l(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // True once exactly `n` threads sleep in the counter (false after 60 s).
  bool WaitSleeping(int n) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(60), [&] { return sleeping_ == n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int sleeping_ = 0;
  std::atomic<uint64_t> now_{1};
};

class RegionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cosmos_region_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    sealer_ = MakeSealer(0x11);
    geometry_.size = kBlocks * kBlock;
    geometry_.block_size = kBlock;
    geometry_.cached_levels = 2;  // most levels stored untrusted: exercises tree tampering
    geometry_.log_capacity_blocks = 8;
    store_size_ = *ProtectedRegion::RequiredStoreSize(geometry_);
    store_ = std::make_unique<MemoryStore>(store_size_);
    counter_ = OpenCounter();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::unique_ptr<Sealer> MakeSealer(uint8_t b) {
    auto key = DeriveSealingKey(Bytes(32, b), AsBytes("measurement"));
    return std::move(*Sealer::Create(key->span()));
  }
  std::unique_ptr<SimulatedCounter> OpenCounter(std::string name = "counter") {
    SimulatedCounter::Options o;
    o.path = (dir_ / name).string();
    o.stabilisation_delay_ns = 1000;
    o.now_ns = [this] { return now_; };
    o.sleep_ns = [this](uint64_t ns) { now_ += ns; };
    return std::move(*SimulatedCounter::Open(o));
  }
  std::unique_ptr<ProtectedRegion> Create(UntrustedStore* store, uint64_t id = 7,
                                          RegionPolicy policy = {}) {
    auto r = ProtectedRegion::Create(B(id), geometry_, AsBytes("acl"), store, counter_.get(),
                                     sealer_.get(), policy);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(*r) : nullptr;
  }
  Result<std::unique_ptr<ProtectedRegion>> Reopen(UntrustedStore* store, uint64_t id = 7,
                                                  RegionPolicy policy = {}) {
    return ProtectedRegion::Open(B(id), store, counter_.get(), sealer_.get(), policy);
  }
  static Bytes Pattern(size_t n, uint8_t seed) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 8));
    return b;
  }
  // Every block either reads back `expected` or fails with an integrity
  // violation; returns how many failed.
  static int CountDetected(ProtectedRegion* r, const Bytes& expected) {
    int detected = 0;
    Bytes got(kBlock);
    for (uint64_t i = 0; i < kBlocks; ++i) {
      Status s = r->Read(i * kBlock, got);
      if (s.ok()) {
        EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin() + i * kBlock))
            << "wrong data returned for block " << i;
      } else {
        EXPECT_EQ(s.code(), StatusCode::kIntegrityViolation) << s;
        ++detected;
      }
    }
    return detected;
  }
  // A host snapshot: the store plus the counter file it goes with (every Open
  // commits a new incarnation, so restoring the store alone is a rollback).
  struct Saved {
    Bytes store;
    std::string counter;
  };
  Saved Save() {
    std::ifstream in(dir_ / "counter", std::ios::binary);
    return {store_->Snapshot(), std::string(std::istreambuf_iterator<char>(in), {})};
  }
  // REQUIRES: no region uses counter_.
  void Restore(const Saved& saved) {
    counter_.reset();
    {
      std::ofstream out(dir_ / "counter", std::ios::binary | std::ios::trunc);
      out << saved.counter;
    }
    counter_ = OpenCounter();
    store_->Restore(saved.store);
  }

  // Offsets derived from the documented layout (docs/security.md).
  uint64_t DataOffset() const { return store_size_ - kBlocks * kBlock; }
  uint64_t MetaOffset() const {
    // log area: header 64 + slot 1024 + cap * ((16+B) + (16+32) + cut*(16+32)), 4 KiB aligned
    const uint64_t cut = 7 - 2;
    const uint64_t log = ((64 + 1024 + 8 * ((16 + kBlock) + 48 + cut * 48)) + 4095) / 4096 * 4096;
    return 2048 + log;
  }
  uint64_t TreeOffset() const { return MetaOffset() + kBlocks * 32; }

  std::filesystem::path dir_;
  uint64_t now_ = 1;
  std::unique_ptr<Sealer> sealer_;
  RegionGeometry geometry_;
  uint64_t store_size_ = 0;
  std::unique_ptr<MemoryStore> store_;
  std::unique_ptr<SimulatedCounter> counter_;
};

TEST_F(RegionTest, NewRegionReadsZeros) {
  auto r = Create(store_.get());
  Bytes got(geometry_.size, 0xff);
  ASSERT_TRUE(r->Read(0, got).ok());
  EXPECT_EQ(got, Bytes(geometry_.size, 0));
}

TEST_F(RegionTest, WritesReadBackBeforeAndAfterFlushAndReopen) {
  auto r = Create(store_.get());
  Bytes data = Pattern(geometry_.size, 3);
  ASSERT_TRUE(r->Write(0, data).ok());
  Bytes got(data.size());
  ASSERT_TRUE(r->Read(0, got).ok());
  EXPECT_EQ(got, data);
  ASSERT_TRUE(r->Flush().ok());
  r.reset();
  auto again = Reopen(store_.get());
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->Read(0, got).ok());
  EXPECT_EQ(got, data);
  EXPECT_EQ((*again)->access_list(), Bytes({'a', 'c', 'l'}));
}

TEST_F(RegionTest, ApplyAtomicIsVisibleAtOnceDurableAfterFlushAndAllOrNothing) {
  auto r = Create(store_.get());
  const uint64_t word_at = 10 * kBlock + 16;
  using Kind = AtomicUpdate::Kind;
  // Leave an increment unstable, then fill the dirty set to the log capacity:
  // the next new dirty block needs an early commit, which must wait.
  {
    NoCounterWaitScope no_wait;
    ASSERT_TRUE(r->Write(0, Bytes(1, 1)).ok());
    ASSERT_TRUE(IsCounterWaitNeeded(r->Flush()));
  }
  for (uint64_t b = 0; b < geometry_.log_capacity_blocks; ++b) {
    ASSERT_TRUE(r->Write(b * kBlock, Bytes(1, 2)).ok());
  }
  const uint64_t commits = r->stats().commits;
  {
    NoCounterWaitScope no_wait;
    auto refused = r->ApplyAtomic({Kind::kFetchAdd, word_at, 5, 0});
    ASSERT_TRUE(IsCounterWaitNeeded(refused.status())) << refused.status();
  }
  EXPECT_EQ(r->stats().commits, commits);
  Bytes word(8);
  ASSERT_TRUE(r->Read(word_at, word).ok());
  EXPECT_EQ(word, Bytes(8, 0)) << "a refused atomic changed the word";

  EXPECT_EQ(r->ApplyAtomic({Kind::kFetchAdd, word_at, 5, 0}).value_or(99), 0u);
  EXPECT_EQ(r->ApplyAtomic({Kind::kCompareAndSwap, word_at, 5, 0x0102}).value_or(99), 5u);
  ASSERT_TRUE(r->Read(word_at, word).ok());  // visible before any flush
  EXPECT_EQ(word, Bytes({2, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(r->ApplyAtomic({Kind::kFetchAdd, word_at + 4, 1, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(r->ApplyAtomic({Kind::kFetchAdd, geometry_.size, 1, 0}).status().code(),
            StatusCode::kOutOfRange);
  ASSERT_TRUE(r->Flush().ok());
  // A failed comparison leaves nothing to commit.
  const uint64_t flushed = r->stats().commits;
  EXPECT_EQ(r->ApplyAtomic({Kind::kCompareAndSwap, word_at + 8, 1, 2}).value_or(99), 0u);
  ASSERT_TRUE(r->Flush().ok());
  EXPECT_EQ(r->stats().commits, flushed);
  r.reset();
  auto again = Reopen(store_.get());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->ApplyAtomic({Kind::kFetchAdd, word_at, 0, 0}).value_or(99), 0x0102u);
}

TEST_F(RegionTest, UnalignedWritesMergeWithNeighbours) {
  auto r = Create(store_.get());
  Bytes expect(geometry_.size, 0);
  std::mt19937_64 rng(5);
  for (int k = 0; k < 40; ++k) {
    const uint64_t off = rng() % (geometry_.size - 1);
    const uint64_t len = 1 + rng() % std::min<uint64_t>(3000, geometry_.size - off);
    Bytes d = Pattern(len, static_cast<uint8_t>(k));
    ASSERT_TRUE(r->Write(off, d).ok());
    std::copy(d.begin(), d.end(), expect.begin() + off);
    if (k % 7 == 0) {
      ASSERT_TRUE(r->Flush().ok());
    }
  }
  ASSERT_TRUE(r->Flush().ok());
  r.reset();
  auto again = Reopen(store_.get());
  ASSERT_TRUE(again.ok());
  Bytes got(geometry_.size);
  ASSERT_TRUE((*again)->Read(0, got).ok());
  EXPECT_EQ(got, expect);
}

TEST_F(RegionTest, PlaintextNeverAppearsInStoreBytes) {
  auto r = Create(store_.get());
  std::string secret;
  while (secret.size() < geometry_.size) secret += "TOP-SECRET-PAYLOAD-0123456789abcdef ";
  secret.resize(geometry_.size);
  ASSERT_TRUE(r->Write(0, AsBytes(secret)).ok());  // > log capacity: commits early too
  ASSERT_TRUE(r->Flush().ok());
  const std::string store(store_->bytes().begin(), store_->bytes().end());
  for (size_t i = 0; i + 16 <= secret.size(); i += 37) {
    ASSERT_EQ(store.find(secret.substr(i, 16)), std::string::npos) << "plaintext at " << i;
  }
}

TEST_F(RegionTest, OutOfRangeAndBadGeometryAreRejected) {
  auto r = Create(store_.get());
  Bytes b(10);
  EXPECT_EQ(r->Read(geometry_.size - 5, b).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->Write(geometry_.size, b).code(), StatusCode::kOutOfRange);
  RegionGeometry g = geometry_;
  g.block_size = 1000;
  EXPECT_EQ(ProtectedRegion::RequiredStoreSize(g).status().code(), StatusCode::kInvalidArgument);
  g = geometry_;
  g.size = 100;
  EXPECT_EQ(ProtectedRegion::RequiredStoreSize(g).status().code(), StatusCode::kInvalidArgument);
  MemoryStore small(store_size_ - 1);
  EXPECT_EQ(ProtectedRegion::Create(B(1), geometry_, {}, &small, counter_.get(), sealer_.get())
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

// --- tamper suite -----------------------------------------------------------

class TamperTest : public RegionTest {
 protected:
  void SetUp() override {
    RegionTest::SetUp();
    region_ = Create(store_.get());
    data_ = Pattern(geometry_.size, 9);
    ASSERT_TRUE(region_->Write(0, data_).ok());
    ASSERT_TRUE(region_->Flush().ok());
  }
  // Detection on the live region, and again after a reopen (if it opens).
  void ExpectDetected() {
    EXPECT_GT(CountDetected(region_.get(), data_), 0);
    region_.reset();
    auto again = Reopen(store_.get());
    if (again.ok()) {
      EXPECT_GT(CountDetected(again->get(), data_), 0);
    } else {
      EXPECT_EQ(again.status().code(), StatusCode::kIntegrityViolation) << again.status();
    }
  }
  std::unique_ptr<ProtectedRegion> region_;
  Bytes data_;
};

TEST_F(TamperTest, BitFlipInDataIsDetected) {
  store_->FlipBit(DataOffset() + 5 * kBlock + 100, 3);
  ExpectDetected();
}

TEST_F(TamperTest, BitFlipInTagIsDetected) {
  store_->FlipBit(MetaOffset() + 9 * 32 + 16 + 4, 0);
  ExpectDetected();
}

TEST_F(TamperTest, BitFlipInVersionIsDetected) {
  store_->FlipBit(MetaOffset() + 12 * 32, 1);
  ExpectDetected();
}

TEST_F(TamperTest, BitFlipInEveryStoredTreeLevelIsDetected) {
  // Stored levels 0..4 of 64, 32, 16, 8, 4 nodes.
  uint64_t off = TreeOffset();
  const uint64_t nodes[] = {64, 32, 16, 8, 4};
  region_.reset();
  const Saved clean = Save();
  for (uint64_t level = 0; level < 5; ++level) {
    for (uint64_t node = 0; node < nodes[level]; node += 3) {
      region_.reset();
      Restore(clean);
      region_ = *Reopen(store_.get());
      store_->FlipBit(off + node * 32 + 7, 5);
      EXPECT_GT(CountDetected(region_.get(), data_), 0) << "level " << level << " node " << node;
    }
    off += nodes[level] * 32;
  }
}

TEST_F(TamperTest, SwappedBlocksAreDetected) {
  Bytes& s = store_->bytes();
  std::swap_ranges(s.begin() + DataOffset() + 2 * kBlock, s.begin() + DataOffset() + 3 * kBlock,
                   s.begin() + DataOffset() + 7 * kBlock);
  std::swap_ranges(s.begin() + MetaOffset() + 2 * 32, s.begin() + MetaOffset() + 3 * 32,
                   s.begin() + MetaOffset() + 7 * 32);
  ExpectDetected();
}

TEST_F(TamperTest, ReplayedOldBlockWithOldTagIsDetected) {
  const Bytes old = store_->Snapshot();
  ASSERT_TRUE(region_->Write(4 * kBlock, Pattern(kBlock, 77)).ok());
  ASSERT_TRUE(region_->Flush().ok());
  std::copy_n(Pattern(kBlock, 77).begin(), kBlock, data_.begin() + 4 * kBlock);
  Bytes& s = store_->bytes();
  std::copy_n(old.begin() + DataOffset() + 4 * kBlock, kBlock,
              s.begin() + DataOffset() + 4 * kBlock);
  std::copy_n(old.begin() + MetaOffset() + 4 * 32, 32, s.begin() + MetaOffset() + 4 * 32);
  ExpectDetected();
}

TEST_F(TamperTest, ReplayedOldBlockWithItsOldTreePathIsDetected) {
  const Bytes old = store_->Snapshot();
  ASSERT_TRUE(region_->Write(4 * kBlock, Pattern(kBlock, 78)).ok());
  ASSERT_TRUE(region_->Flush().ok());
  std::copy_n(Pattern(kBlock, 78).begin(), kBlock, data_.begin() + 4 * kBlock);
  // Roll back data, metadata and the whole stored tree, keep the root slots.
  Bytes& s = store_->bytes();
  std::copy(old.begin() + MetaOffset(), old.begin() + DataOffset() + kBlocks * kBlock,
            s.begin() + MetaOffset());
  ExpectDetected();
}

TEST_F(TamperTest, WholeStoreRolledBackWithCounterAheadIsRefused) {
  const Bytes old = store_->Snapshot();
  ASSERT_TRUE(region_->Write(0, Pattern(100, 1)).ok());
  ASSERT_TRUE(region_->Flush().ok());
  region_.reset();
  store_->Restore(old);
  auto again = Reopen(store_.get());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kIntegrityViolation);
  EXPECT_NE(again.status().message().find("rolled back"), std::string::npos);
}

TEST_F(TamperTest, TruncatedStoreIsRefused) {
  region_.reset();
  for (uint64_t size :
       {store_size_ - 1, store_size_ / 2, uint64_t{3000}, uint64_t{100}, uint64_t{0}}) {
    MemoryStore cut(0);
    cut.bytes().assign(store_->bytes().begin(), store_->bytes().begin() + size);
    auto r = Reopen(&cut);
    ASSERT_FALSE(r.ok()) << size;
    EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation) << size;
  }
}

TEST_F(TamperTest, ForgedOrWipedRootRecordsAreRefused) {
  region_.reset();
  const Saved clean = Save();
  for (uint64_t off : {uint64_t{40}, uint64_t{1024 + 40}}) {
    Restore(clean);
    store_->FlipBit(40, 2);         // slot A
    store_->FlipBit(1024 + 40, 2);  // slot B
    if (off == 40) {
      auto r = Reopen(store_.get());
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation);
    }
  }
  Restore(clean);
  std::fill(store_->bytes().begin(), store_->bytes().begin() + 2048, 0);
  EXPECT_EQ(Reopen(store_.get()).status().code(), StatusCode::kIntegrityViolation);
}

TEST_F(TamperTest, RecordOfAnotherRegionOrPlatformIsRefused) {
  region_.reset();
  EXPECT_EQ(Reopen(store_.get(), /*id=*/8).status().code(), StatusCode::kIntegrityViolation);
  auto other_platform = MakeSealer(0x22);
  EXPECT_EQ(ProtectedRegion::Open(B(7), store_.get(), counter_.get(), other_platform.get())
                .status()
                .code(),
            StatusCode::kIntegrityViolation);
}

TEST_F(TamperTest, BlockFromARegionWithAnotherKeyIsDetected) {
  MemoryStore other(store_size_);
  auto counter2 = OpenCounter("counter2");
  auto r2 = ProtectedRegion::Create(B(7), geometry_, {}, &other, counter2.get(), sealer_.get());
  ASSERT_TRUE(r2.ok());
  ASSERT_TRUE((*r2)->Write(0, data_).ok());  // same plaintext, same id, other key
  ASSERT_TRUE((*r2)->Flush().ok());
  std::copy_n(other.bytes().begin() + DataOffset() + 3 * kBlock, kBlock,
              store_->bytes().begin() + DataOffset() + 3 * kBlock);
  std::copy_n(other.bytes().begin() + MetaOffset() + 3 * 32, 32,
              store_->bytes().begin() + MetaOffset() + 3 * 32);
  ExpectDetected();
}

TEST_F(TamperTest, VerifyReportsTamperInsteadOfADigest) {
  ByteRange all{0, geometry_.size};
  store_->FlipBit(DataOffset() + 60 * kBlock, 0);
  EXPECT_EQ(region_->Verify({&all, 1}, AsBytes("k")).status().code(),
            StatusCode::kIntegrityViolation);
}

TEST_F(TamperTest, RandomByteCorruptionAnywhereNeverYieldsWrongData) {
  region_.reset();
  const Saved clean = Save();
  std::mt19937_64 rng(99);
  int opened = 0;
  for (int k = 0; k < 60; ++k) {
    Restore(clean);
    const uint64_t off = rng() % store_size_;
    store_->bytes()[off] ^= static_cast<uint8_t>(1 + rng() % 255);
    auto r = Reopen(store_.get());
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation) << off;
      EXPECT_EQ(r.status().message().find("rolled back"), std::string::npos)
          << "refused as a rollback, not for the corruption at " << off;
      continue;
    }
    ++opened;
    CountDetected(r->get(), data_);  // asserts no wrong data; unused areas may be untouched
  }
  EXPECT_GT(opened, 0);  // corruption of unused bytes opens: the restore really restores
}

// --- verify, access list, rotation, counters --------------------------------

TEST_F(RegionTest, VerifyIsAKeyedDigestOverDurablePlaintext) {
  auto r = Create(store_.get());
  Bytes data = Pattern(3000, 4);
  ASSERT_TRUE(r->Write(100, data).ok());
  ASSERT_TRUE(r->Flush().ok());
  ByteRange ranges[] = {{100, 1000}, {1100, 2000}};
  auto d = r->Verify(ranges, AsBytes("session-key"));
  ASSERT_TRUE(d.ok());
  HmacSha256Hasher h(AsBytes("session-key"));
  for (const ByteRange& rg : ranges) {
    uint8_t hdr[16];
    StoreLE<uint64_t>(hdr, rg.offset);
    StoreLE<uint64_t>(hdr + 8, rg.length);
    h.Update(ByteSpan(hdr, 16));
    h.Update(ByteSpan(data.data() + (rg.offset - 100), rg.length));
  }
  EXPECT_EQ(*d, h.Final());
  EXPECT_NE(*r->Verify(ranges, AsBytes("other-key")), *d);
  // Unflushed writes are not part of the durable digest.
  ASSERT_TRUE(r->Write(100, Bytes(10, 0)).ok());
  EXPECT_EQ(*r->Verify(ranges, AsBytes("session-key")), *d);
}

TEST_F(RegionTest, AccessListIsCommittedAndSurvivesReopen) {
  auto r = Create(store_.get());
  ASSERT_TRUE(r->SetAccessList(AsBytes("new-acl")).ok());
  EXPECT_EQ(r->SetAccessList(Bytes(257)).code(), StatusCode::kInvalidArgument);
  r.reset();
  auto again = Reopen(store_.get());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->access_list(), Bytes({'n', 'e', 'w', '-', 'a', 'c', 'l'}));
}

TEST_F(RegionTest, KeyRotationReencryptsEverythingUnderANewKey) {
  auto r = Create(store_.get());
  Bytes data = Pattern(geometry_.size, 5);
  ASSERT_TRUE(r->Write(0, data).ok());
  ASSERT_TRUE(r->Flush().ok());
  const Bytes before(store_->bytes().begin() + DataOffset(), store_->bytes().end());
  ASSERT_TRUE(r->RotateKey().ok());
  EXPECT_EQ(r->key_epoch(), 2u);
  EXPECT_FALSE(r->rotation_in_progress());
  const Bytes after(store_->bytes().begin() + DataOffset(), store_->bytes().end());
  for (uint64_t i = 0; i < kBlocks; ++i) {
    EXPECT_FALSE(std::equal(before.begin() + i * kBlock, before.begin() + (i + 1) * kBlock,
                            after.begin() + i * kBlock));
  }
  Bytes got(data.size());
  ASSERT_TRUE(r->Read(0, got).ok());
  EXPECT_EQ(got, data);
  r.reset();
  auto again = Reopen(store_.get());
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Read(0, got).ok());
  EXPECT_EQ(got, data);
}

TEST_F(RegionTest, OnlineRotationSurvivesReopenMidway) {
  auto r = Create(store_.get());
  Bytes data = Pattern(geometry_.size, 6);
  ASSERT_TRUE(r->Write(0, data).ok());
  ASSERT_TRUE(r->Flush().ok());
  ASSERT_TRUE(r->StartKeyRotation().ok());
  EXPECT_EQ(r->StartKeyRotation().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(r->Write(10 * kBlock, Pattern(kBlock, 60)).ok());
  std::copy_n(Pattern(kBlock, 60).begin(), kBlock, data.begin() + 10 * kBlock);
  ASSERT_TRUE(r->RotationStep(20).ok());
  EXPECT_TRUE(r->rotation_in_progress());
  r.reset();
  auto again = Reopen(store_.get());
  ASSERT_TRUE(again.ok()) << again.status();
  Bytes got(data.size());
  ASSERT_TRUE((*again)->Read(0, got).ok());
  EXPECT_EQ(got, data);
  ASSERT_TRUE((*again)->RotationStep(1000).ok());
  EXPECT_FALSE((*again)->rotation_in_progress());
  ASSERT_TRUE((*again)->Read(0, got).ok());
  EXPECT_EQ(got, data);
}

TEST_F(RegionTest, VersionThresholdForcesRotationBeforeNoncesCouldRepeat) {
  RegionPolicy p;
  p.rekey_version_threshold = 4;
  auto r = Create(store_.get(), 7, p);
  Bytes data = Pattern(geometry_.size, 8);
  ASSERT_TRUE(r->Write(0, data).ok());
  ASSERT_TRUE(r->Flush().ok());
  for (int k = 0; k < 12; ++k) {
    Bytes b = Pattern(kBlock, static_cast<uint8_t>(100 + k));
    ASSERT_TRUE(r->Write(kBlock, b).ok());
    ASSERT_TRUE(r->Flush().ok());
    std::copy(b.begin(), b.end(), data.begin() + kBlock);
  }
  EXPECT_GE(r->key_epoch(), 4u);
  EXPECT_GE(r->stats().key_rotations, 3u);
  Bytes got(data.size());
  ASSERT_TRUE(r->Read(0, got).ok());
  EXPECT_EQ(got, data);
  r.reset();
  auto again = Reopen(store_.get(), 7, p);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->Read(0, got).ok());
  EXPECT_EQ(got, data);
}

TEST_F(RegionTest, StrictModeAcknowledgesOnlyStableCounterValues) {
  auto r = Create(store_.get());
  ASSERT_TRUE(r->Write(0, Bytes(10, 1)).ok());
  ASSERT_TRUE(r->Flush().ok());
  EXPECT_TRUE(counter_->IsStable(r->committed_counter()));
}

TEST_F(RegionTest, RelaxedModeBoundsTheUnstableWindow) {
  SimulatedCounter::Options o;
  o.path = (dir_ / "manual").string();
  o.manual = true;
  auto manual = std::move(*SimulatedCounter::Open(o));
  RegionPolicy p;
  p.counter_mode = CounterMode::kRelaxed;
  p.relaxed_window = 3;
  auto created =
      ProtectedRegion::Create(B(7), geometry_, {}, store_.get(), manual.get(), sealer_.get(), p);
  ASSERT_TRUE(created.ok()) << created.status();
  auto& r = *created;
  // Create used one increment; three more flushes fit in the window of 3.
  for (int k = 0; k < 2; ++k) {
    ASSERT_TRUE(r->Write(0, Bytes(10, static_cast<uint8_t>(k))).ok());
    ASSERT_TRUE(r->Flush().ok());
  }
  ASSERT_TRUE(r->Write(0, Bytes(10, 9)).ok());
  EXPECT_EQ(r->Flush().code(), StatusCode::kUnavailable);  // would exceed the window
  ASSERT_TRUE(manual->StabiliseAll().ok());
  ASSERT_TRUE(r->Flush().ok());
}

TEST_F(RegionTest, RecordAheadOfALostCounterIncrementIsAccepted) {
  SimulatedCounter::Options o;
  o.path = (dir_ / "manual").string();
  o.manual = true;
  RegionPolicy p;
  p.counter_mode = CounterMode::kRelaxed;
  {
    auto manual = std::move(*SimulatedCounter::Open(o));
    auto r =
        ProtectedRegion::Create(B(7), geometry_, {}, store_.get(), manual.get(), sealer_.get(), p);
    ASSERT_TRUE(manual->StabiliseAll().ok());
    ASSERT_TRUE((*r)->Write(0, Bytes(10, 4)).ok());
    ASSERT_TRUE((*r)->Flush().ok());  // increment never stabilises: "crash"
  }
  auto manual = std::move(*SimulatedCounter::Open(o));
  auto r = ProtectedRegion::Open(B(7), store_.get(), manual.get(), sealer_.get(), p);
  ASSERT_TRUE(r.ok()) << r.status();
  Bytes got(10);
  ASSERT_TRUE((*r)->Read(0, got).ok());
  EXPECT_EQ(got, Bytes(10, 4));
  EXPECT_EQ(manual->Current(), (*r)->committed_counter());
}

TEST_F(RegionTest, StrictFlushesArrivingWhileAnIncrementIsPendingShareTheNextValue) {
  CounterGate gate;
  auto gated = gate.OpenCounter((dir_ / "gated").string());
  auto created =
      ProtectedRegion::Create(B(7), geometry_, {}, store_.get(), gated.get(), sealer_.get(), {});
  ASSERT_TRUE(created.ok()) << created.status();
  auto& r = *created;
  const uint64_t c0 = r->committed_counter();
  const uint64_t commits0 = r->stats().commits;
  gate.Close();
  constexpr int kFlushers = 6;
  std::vector<Status> results(kFlushers);
  std::vector<std::thread> threads;
  auto flusher = [&](int k) {
    Status s =
        r->Write(static_cast<uint64_t>(k) * kBlock, Bytes(kBlock, static_cast<uint8_t>(k + 1)));
    results[k] = s.ok() ? r->Flush() : s;
  };
  // The first flush commits c0+1 and waits for it to stabilise...
  threads.emplace_back(flusher, 0);
  ASSERT_TRUE(gate.WaitSleeping(1));
  EXPECT_EQ(r->committed_counter(), c0 + 1);
  // ...the others arrive while that increment is pending: they wait for it
  // without holding the region (reads go on) and commit nothing yet.
  for (int k = 1; k < kFlushers; ++k) threads.emplace_back(flusher, k);
  ASSERT_TRUE(gate.WaitSleeping(kFlushers));
  Bytes got(kBlock);
  ASSERT_TRUE(r->Read(0, got).ok());
  EXPECT_EQ(got, Bytes(kBlock, 1));
  EXPECT_EQ(r->committed_counter(), c0 + 1);
  EXPECT_FALSE(gated->IsStable(c0 + 1));
  gate.Open();
  for (auto& t : threads) t.join();
  for (int k = 0; k < kFlushers; ++k) EXPECT_TRUE(results[k].ok()) << k << ": " << results[k];
  // One more commit and counter value served the five late flushes.
  EXPECT_EQ(r->committed_counter(), c0 + 2);
  EXPECT_EQ(r->stats().commits, commits0 + 2);
  EXPECT_TRUE(gated->IsStable(c0 + 2));
  for (int k = 0; k < kFlushers; ++k) {
    ASSERT_TRUE(r->Read(static_cast<uint64_t>(k) * kBlock, got).ok());
    EXPECT_EQ(got, Bytes(kBlock, static_cast<uint8_t>(k + 1)));
  }
}

TEST_F(RegionTest, RecordFurtherAheadOfTheCounterThanTheModeAllowsIsRefused) {
  SimulatedCounter::Options o;
  o.path = (dir_ / "manual").string();
  o.manual = true;
  RegionPolicy relaxed;
  relaxed.counter_mode = CounterMode::kRelaxed;
  relaxed.relaxed_window = 8;
  {
    auto manual = std::move(*SimulatedCounter::Open(o));
    auto r = ProtectedRegion::Create(B(7), geometry_, {}, store_.get(), manual.get(), sealer_.get(),
                                     relaxed);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(manual->StabiliseAll().ok());
    for (int k = 0; k < 3; ++k) {  // three acknowledged, never stabilised: "crash"
      ASSERT_TRUE((*r)->Write(0, Bytes(10, static_cast<uint8_t>(k + 1))).ok());
      ASSERT_TRUE((*r)->Flush().ok());
    }
  }
  RegionPolicy strict;
  {
    auto manual = std::move(*SimulatedCounter::Open(o));
    auto r = ProtectedRegion::Open(B(7), store_.get(), manual.get(), sealer_.get(), strict);
    ASSERT_EQ(r.status().code(), StatusCode::kIntegrityViolation);
    EXPECT_NE(r.status().message().find("3 ahead"), std::string::npos) << r.status();
    RegionPolicy tight = relaxed;
    tight.relaxed_window = 2;
    EXPECT_EQ(ProtectedRegion::Open(B(7), store_.get(), manual.get(), sealer_.get(), tight)
                  .status()
                  .code(),
              StatusCode::kIntegrityViolation);
    EXPECT_EQ(manual->Current(), 1u);  // a refused open does not advance the counter
  }
  {
    // Within the window the record is accepted (lost unstable increments).
    auto manual = std::move(*SimulatedCounter::Open(o));
    auto r = ProtectedRegion::Open(B(7), store_.get(), manual.get(), sealer_.get(), relaxed);
    ASSERT_TRUE(r.ok()) << r.status();
    Bytes got(10);
    ASSERT_TRUE((*r)->Read(0, got).ok());
    EXPECT_EQ(got, Bytes(10, 3));
  }
  {
    // The operator override accepts it in strict mode too.
    strict.accept_counter_reset = true;
    auto manual = std::move(*SimulatedCounter::Open(o));
    auto r = ProtectedRegion::Open(B(7), store_.get(), manual.get(), sealer_.get(), strict);
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);  // manual counter: accepted, then waits
    ASSERT_TRUE(manual->StabiliseAll().ok());
    // 10: the relaxed open above committed its incarnation record past every
    // value the crashed run may have used (stable 1 + window 8 + 1), which
    // this open accepts as an incarnation jump, not as a counter reset.
    EXPECT_EQ(manual->Current(), 10u);
  }
}

TEST_F(RegionTest, StrictModeKeepsAtMostOneIncrementUnstable) {
  SimulatedCounter::Options o;
  o.path = (dir_ / "manual").string();
  o.manual = true;
  auto manual = std::move(*SimulatedCounter::Open(o));
  RegionPolicy relaxed;
  relaxed.counter_mode = CounterMode::kRelaxed;
  auto created = ProtectedRegion::Create(B(7), geometry_, {}, store_.get(), manual.get(),
                                         sealer_.get(), relaxed);
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(manual->StabiliseAll().ok());
  created->reset();
  auto r = ProtectedRegion::Open(B(7), store_.get(), manual.get(), sealer_.get(), RegionPolicy{});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(manual->StabiliseAll().ok());  // the open's incarnation record
  const uint64_t c0 = manual->Current();
  ASSERT_TRUE((*r)->Write(0, Bytes(10, 1)).ok());
  EXPECT_EQ((*r)->Flush().code(), StatusCode::kUnavailable);  // committed; its value not stable
  EXPECT_EQ(manual->Current(), c0 + 1);
  // A second flush may not add a second unstable increment: it waits (here:
  // the manual counter cannot) before committing anything.
  ASSERT_TRUE((*r)->Write(0, Bytes(10, 2)).ok());
  EXPECT_EQ((*r)->Flush().code(), StatusCode::kUnavailable);
  EXPECT_EQ(manual->Current(), c0 + 1);
  ASSERT_TRUE(manual->StabiliseAll().ok());
  EXPECT_EQ((*r)->Flush().code(), StatusCode::kUnavailable);  // commits c0+2, cannot stabilise it
  EXPECT_EQ(manual->Current(), c0 + 2);
  // A crash now leaves the record 1 ahead of the counter: strict accepts that.
  r->reset();
  auto after = std::move(*SimulatedCounter::Open(o));
  auto again = ProtectedRegion::Open(B(7), store_.get(), after.get(), sealer_.get(), relaxed);
  ASSERT_TRUE(again.ok()) << again.status();
  Bytes got(10);
  ASSERT_TRUE((*again)->Read(0, got).ok());
  EXPECT_EQ(got, Bytes(10, 2));
}

TEST_F(RegionTest, NoCounterWaitScopeStopsInsteadOfWaitingAndARepeatCompletes) {
  SimulatedCounter::Options o;
  o.path = (dir_ / "manual").string();
  o.manual = true;
  auto manual = std::move(*SimulatedCounter::Open(o));
  RegionPolicy relaxed;
  relaxed.counter_mode = CounterMode::kRelaxed;
  relaxed.relaxed_window = 2;
  auto created = ProtectedRegion::Create(B(7), geometry_, {}, store_.get(), manual.get(),
                                         sealer_.get(), relaxed);
  ASSERT_TRUE(created.ok());
  auto& r = *created;
  ASSERT_TRUE(manual->StabiliseAll().ok());
  {
    NoCounterWaitScope no_wait;
    // Relaxed with room in the window: completes without any wait.
    ASSERT_TRUE(r->Write(0, Bytes(10, 1)).ok());
    ASSERT_TRUE(r->Flush().ok());
    ASSERT_TRUE(r->Write(0, Bytes(10, 2)).ok());
    ASSERT_TRUE(r->Flush().ok());
    EXPECT_EQ(manual->Current(), 3u);
    // Window full: stops before committing anything.
    ASSERT_TRUE(r->Write(0, Bytes(10, 3)).ok());
    Status s = r->Flush();
    EXPECT_TRUE(IsCounterWaitNeeded(s)) << s;
    EXPECT_EQ(manual->Current(), 3u);
  }
  EXPECT_FALSE(NoCounterWaitScope::active());
  ASSERT_TRUE(manual->StabiliseAll().ok());
  ASSERT_TRUE(r->Flush().ok());  // the repeat, without the scope
  EXPECT_EQ(manual->Current(), 4u);
  Bytes got(10);
  ASSERT_TRUE(r->Read(0, got).ok());
  EXPECT_EQ(got, Bytes(10, 3));
  EXPECT_FALSE(IsCounterWaitNeeded(Status::ResourceExhausted("pool full")));
}

TEST_F(RegionTest, RelaxedFlushAtAFullWindowWaitsUntilHalfOfItIsFree) {
  // Fake clock: each flush happens 100 ns after the previous one; a value
  // is stable 1000 ns after its increment; every sleep is counted.
  uint64_t now = 1;
  int sleeps = 0;
  SimulatedCounter::Options o;
  o.path = (dir_ / "hyst").string();
  o.stabilisation_delay_ns = 1000;
  o.now_ns = [&] { return now; };
  o.sleep_ns = [&](uint64_t ns) {
    ++sleeps;
    now += ns;
  };
  auto c = std::move(*SimulatedCounter::Open(o));
  RegionPolicy relaxed;
  relaxed.counter_mode = CounterMode::kRelaxed;
  relaxed.relaxed_window = 4;
  auto created =
      ProtectedRegion::Create(B(7), geometry_, {}, store_.get(), c.get(), sealer_.get(), relaxed);
  ASSERT_TRUE(created.ok());
  auto& r = *created;
  now += 5000;  // the create's value is stable
  auto flush = [&](int k) {
    now += 100;
    ASSERT_TRUE(r->Write(0, Bytes(10, static_cast<uint8_t>(k))).ok());
    ASSERT_TRUE(r->Flush().ok());
  };
  for (int k = 0; k < 4; ++k) flush(k);  // fills the window of 4
  EXPECT_EQ(sleeps, 0);
  EXPECT_EQ(c->Current() - c->Stable(), 4u);
  flush(4);  // window full: waits once, until only 2 values are unstable
  EXPECT_EQ(sleeps, 1);
  // At most half the window unstable, this flush's own increment included
  // (waiting only for the oldest value would leave 4).
  EXPECT_EQ(c->Current() - c->Stable(), 2u);
  for (int k = 5; k < 12; ++k) flush(k);
  EXPECT_LE(c->Current() - c->Stable(), 4u);
}

TEST_F(RegionTest, NoCounterWaitScopeInStrictModeCommitsThenLeavesTheWait) {
  auto r = Create(store_.get());
  ASSERT_TRUE(r->Write(0, Bytes(10, 5)).ok());
  const uint64_t before = r->committed_counter();
  {
    NoCounterWaitScope no_wait;
    Status s = r->Flush();
    EXPECT_TRUE(IsCounterWaitNeeded(s)) << s;
  }
  EXPECT_EQ(r->committed_counter(), before + 1);  // committed on the no-wait call
  EXPECT_FALSE(counter_->IsStable(before + 1));
  const uint64_t commits = r->stats().commits;
  ASSERT_TRUE(r->Flush().ok());  // waits (fake clock) without committing again
  EXPECT_EQ(r->stats().commits, commits);
  EXPECT_TRUE(counter_->IsStable(before + 1));
}

TEST_F(RegionTest, EveryOpenStartsANewIncarnationAndACounterResetRotatesTheKey) {
  auto r = Create(store_.get());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->incarnation(), 1u);
  ASSERT_TRUE(r->Write(0, Pattern(kBlock, 1)).ok());
  ASSERT_TRUE(r->Flush().ok());
  r.reset();
  for (uint32_t expected : {2u, 3u}) {
    auto again = Reopen(store_.get());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ((*again)->incarnation(), expected);
    EXPECT_EQ((*again)->key_epoch(), 1u);
  }
  // The counter is lost: the operator override opens the region but rotates
  // to a fresh key (incarnations used under the lost values could repeat).
  counter_.reset();
  std::filesystem::remove(dir_ / "counter");
  counter_ = OpenCounter();
  RegionPolicy reset;
  reset.accept_counter_reset = true;
  auto rotated = Reopen(store_.get(), 7, reset);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ((*rotated)->key_epoch(), 2u);
  EXPECT_EQ((*rotated)->incarnation(), 1u);
  Bytes got(kBlock);
  ASSERT_TRUE((*rotated)->Read(0, got).ok());
  EXPECT_EQ(got, Pattern(kBlock, 1));
}

TEST_F(RegionTest, BackgroundRotationLeavesTheRegionUsableWhileItWaitsForTheCounter) {
  CounterGate gate;
  auto gated = gate.OpenCounter((dir_ / "gated").string());
  auto created =
      ProtectedRegion::Create(B(7), geometry_, {}, store_.get(), gated.get(), sealer_.get(), {});
  ASSERT_TRUE(created.ok()) << created.status();
  auto& r = *created;
  const Bytes data = Pattern(geometry_.size, 4);
  ASSERT_TRUE(r->Write(0, data).ok());
  ASSERT_TRUE(r->Flush().ok());
  ASSERT_TRUE(r->StartKeyRotation().ok());
  EXPECT_EQ(r->key_epoch(), 2u);
  gate.Close();
  Status rotated;
  uint64_t steps = 0;
  std::thread rotator([&] {
    bool done = false;
    while (!done && rotated.ok()) {
      rotated = r->BackgroundRotationStep(16, &done);
      ++steps;
    }
  });
  // The rotator now waits for the counter (the rotation's first commit is
  // not stable yet); the region must stay usable meanwhile. A step that
  // waited holding the region would block these calls until the gate opens,
  // which it never would: the futures would not become ready.
  ASSERT_TRUE(gate.WaitSleeping(1));
  auto read = std::async(std::launch::async, [&] {
    Bytes got(kBlock);
    Status s = r->Read(5 * kBlock, got);
    return s.ok() && got == Bytes(data.begin() + 5 * kBlock, data.begin() + 6 * kBlock);
  });
  ASSERT_EQ(read.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_TRUE(read.get());
  auto write =
      std::async(std::launch::async, [&] { return r->Write(3 * kBlock, Bytes(kBlock, 9)); });
  ASSERT_EQ(write.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_TRUE(write.get().ok());
  EXPECT_TRUE(r->rotation_in_progress());
  gate.Open();
  rotator.join();
  ASSERT_TRUE(rotated.ok()) << rotated;
  EXPECT_FALSE(r->rotation_in_progress());
  EXPECT_GT(steps, 2u);  // several commits, the region released between them
  ASSERT_TRUE(r->Flush().ok());
  Bytes expected = data;
  std::fill(expected.begin() + 3 * kBlock, expected.begin() + 4 * kBlock, 9);
  r.reset();
  auto reopened = ProtectedRegion::Open(B(7), store_.get(), gated.get(), sealer_.get());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->key_epoch(), 2u);
  Bytes got(geometry_.size);
  ASSERT_TRUE((*reopened)->Read(0, got).ok());
  EXPECT_EQ(got, expected);
}

// --- nonce uniqueness across crashes ---------------------------------------

// Records every block ciphertext the host ever sees under its (key epoch,
// incarnation, version, index): the block key is derived from (epoch,
// incarnation) and the nonce is (version, index), so one tuple with two
// different ciphertexts is a (key, nonce) pair used for two plaintexts.
class NonceLedger {
 public:
  NonceLedger(uint64_t meta_off, uint64_t data_off) : meta_off_(meta_off), data_off_(data_off) {}
  // Adds blocks [0, blocks) of `image`; returns false on a reuse.
  bool Add(const Bytes& image, uint64_t blocks, std::string* why) {
    for (uint64_t i = 0; i < blocks; ++i) {
      const uint8_t* m = image.data() + meta_off_ + i * 32;
      uint64_t version = 0;
      uint32_t epoch = 0, incarnation = 0;
      std::memcpy(&version, m, 8);
      std::memcpy(&epoch, m + 8, 4);
      std::memcpy(&incarnation, m + 12, 4);
      if (version == 0) continue;
      Bytes ct(image.begin() + data_off_ + i * kBlock,
               image.begin() + data_off_ + (i + 1) * kBlock);
      auto key = std::make_tuple(epoch, incarnation, version, i);
      auto [it, added] = seen_.try_emplace(key, ct);
      if (!added && it->second != ct) {
        *why = "block " + std::to_string(i) + " epoch " + std::to_string(epoch) + " incarnation " +
               std::to_string(incarnation) + " version " + std::to_string(version) +
               " encrypted two plaintexts under one (key, nonce)";
        return false;
      }
    }
    return true;
  }
  size_t size() const { return seen_.size(); }

 private:
  uint64_t meta_off_, data_off_;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t, uint64_t>, Bytes> seen_;
};

// A commit reaches the host, the node crashes before its counter value is
// stable, and the host presents the last stable state (which the freshness
// check must accept): the next writes must not reuse a (key, nonce) pair.
// Crashes at every persist point of open + write + flush, in both modes,
// and the host tries every state it legitimately may present.
TEST_F(RegionTest, NoNonceIsReusedWhateverStateTheHostPresentsAfterACrash) {
  constexpr uint64_t kTouched = 4;
  for (CounterMode mode : {CounterMode::kStrict, CounterMode::kRelaxed}) {
    RegionPolicy policy;
    policy.counter_mode = mode;
    policy.relaxed_window = 4;
    SimulatedCounter::Options o;
    o.path = (dir_ / "manual").string();
    o.manual = true;
    std::filesystem::remove(o.path);
    Bytes base_image;
    {
      MemoryStore store(store_size_);
      auto manual = std::move(*SimulatedCounter::Open(o));
      RegionPolicy create = policy;  // a strict Create would wait on the manual counter
      create.counter_mode = CounterMode::kRelaxed;
      auto r =
          ProtectedRegion::Create(B(7), geometry_, {}, &store, manual.get(), sealer_.get(), create);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_TRUE((*r)->Write(0, Pattern(kTouched * kBlock, 1)).ok());
      Status f = (*r)->Flush();
      ASSERT_TRUE(manual->StabiliseAll().ok());
      if (!f.ok()) {
        ASSERT_TRUE((*r)->Flush().ok());
      }
      ASSERT_TRUE(manual->StabiliseAll().ok());
      base_image = store.Snapshot();
    }
    std::string base_counter;
    {
      std::ifstream in(o.path, std::ios::binary);
      base_counter.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto set_counter = [&](const std::string& bytes) {
      std::ofstream out(o.path, std::ios::binary | std::ios::trunc);
      out << bytes;
    };
    auto read_counter = [&] {
      std::ifstream in(o.path, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    // Open, let the new incarnation stabilise, write, flush (acknowledged or
    // refused by the manual counter: never stabilised).
    auto workload = [&](UntrustedStore* store, uint8_t seed) {
      auto manual = std::move(*SimulatedCounter::Open(o));
      auto r = ProtectedRegion::Open(B(7), store, manual.get(), sealer_.get(), policy);
      if (!r.ok()) {
        if (manual->StabiliseAll().ok())
          r = ProtectedRegion::Open(B(7), store, manual.get(), sealer_.get(), policy);
        if (!r.ok()) return r.status();
      }
      COSMOS_RETURN_IF_ERROR(manual->StabiliseAll());
      COSMOS_RETURN_IF_ERROR((*r)->Write(0, Pattern(kTouched * kBlock, seed)));
      return (*r)->Flush();
    };

    set_counter(base_counter);
    CrashingStore dry(base_image, {});
    (void)workload(&dry, 2);
    const uint64_t total = dry.persist_calls();
    ASSERT_GT(total, 3u);
    // Every state the host could hold on to: the durable image at each
    // persist point of the run (exact, no torn writes) and the base image.
    std::vector<Bytes> held{base_image};
    for (uint64_t j = 1; j <= total + 1; ++j) {
      set_counter(base_counter);
      CrashingStore prefix(base_image, {j, /*leak_unpersisted=*/false, j});
      (void)workload(&prefix, 2);
      held.push_back(prefix.durable());
    }
    size_t presented = 0;
    for (uint64_t crash_at = 1; crash_at <= total + 1; ++crash_at) {
      NonceLedger ledger(MetaOffset(), DataOffset());
      std::string why;
      ASSERT_TRUE(ledger.Add(base_image, kTouched, &why)) << why;
      set_counter(base_counter);
      CrashingStore crashing(base_image, {crash_at, /*leak_unpersisted=*/true, crash_at});
      (void)workload(&crashing, 2);
      ASSERT_TRUE(ledger.Add(crashing.written(), kTouched, &why)) << why;
      const std::string counter_after = read_counter();
      // The host presents the durable image or the older base image; the
      // enclave must refuse whichever is older than the stable counter.
      std::vector<const Bytes*> candidates{&crashing.durable()};
      for (const Bytes& h : held) candidates.push_back(&h);
      for (const Bytes* image : candidates) {
        set_counter(counter_after);
        MemoryStore host(0);
        host.bytes() = *image;
        Status s = workload(&host, 3);
        if (!s.ok() && s.code() == StatusCode::kIntegrityViolation) continue;  // refused: fine
        ++presented;
        ASSERT_TRUE(ledger.Add(host.bytes(), kTouched, &why))
            << why << " (crash at persist " << crash_at << ", mode "
            << (mode == CounterMode::kStrict ? "strict" : "relaxed") << ")";
      }
    }
    EXPECT_GT(presented, total);  // the host's older state was accepted, not just refused
  }
}

// The fork a counter reused across incarnations would allow: run 1 commits
// unstable state R1 and crashes; the host restarts from the state before R1,
// run 2 starts an incarnation whose record takes R1's counter value, writes a
// block twice without stabilising and crashes; the host presents R1, which
// then looks exactly as fresh as run 2's record. Run 3 must either be refused
// or never repeat one of run 2's (key, nonce) pairs.
TEST_F(RegionTest, NoNonceIsReusedWhenTheHostForksTheRegionAcrossTwoCrashes) {
  RegionPolicy relaxed;
  relaxed.counter_mode = CounterMode::kRelaxed;
  relaxed.relaxed_window = 4;
  SimulatedCounter::Options o;
  o.path = (dir_ / "manual").string();
  o.manual = true;
  NonceLedger ledger(MetaOffset(), DataOffset());
  std::string why;
  MemoryStore store(store_size_);
  {
    auto manual = std::move(*SimulatedCounter::Open(o));
    auto r =
        ProtectedRegion::Create(B(7), geometry_, {}, &store, manual.get(), sealer_.get(), relaxed);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE((*r)->Write(0, Pattern(kBlock, 1)).ok());
    ASSERT_TRUE((*r)->Flush().ok());
    ASSERT_TRUE(manual->StabiliseAll().ok());
  }
  // Run 1: its incarnation becomes stable (the host keeps that image), then
  // one acknowledged, never stabilised commit (the host keeps that too).
  Bytes before_r1, r1;
  {
    auto manual = std::move(*SimulatedCounter::Open(o));
    auto r = ProtectedRegion::Open(B(7), &store, manual.get(), sealer_.get(), relaxed);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(manual->StabiliseAll().ok());
    before_r1 = store.Snapshot();
    ASSERT_TRUE((*r)->Write(0, Pattern(kBlock, 2)).ok());
    ASSERT_TRUE((*r)->Flush().ok());
    r1 = store.Snapshot();
    ASSERT_TRUE(ledger.Add(r1, 1, &why)) << why;
  }
  // Run 2 from the state before R1: a new incarnation, stabilised, then two
  // unstable commits of block 0.
  store.Restore(before_r1);
  {
    auto manual = std::move(*SimulatedCounter::Open(o));
    auto r = ProtectedRegion::Open(B(7), &store, manual.get(), sealer_.get(), relaxed);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(manual->StabiliseAll().ok());
    for (uint8_t seed : {3, 4}) {
      ASSERT_TRUE((*r)->Write(0, Pattern(kBlock, seed)).ok());
      ASSERT_TRUE((*r)->Flush().ok());
      ASSERT_TRUE(ledger.Add(store.Snapshot(), 1, &why)) << why;
    }
  }
  // Run 3 from R1.
  store.Restore(r1);
  auto manual = std::move(*SimulatedCounter::Open(o));
  auto r = ProtectedRegion::Open(B(7), &store, manual.get(), sealer_.get(), relaxed);
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation) << r.status();
    EXPECT_NE(r.status().message().find("rolled back"), std::string::npos) << r.status();
    return;
  }
  ASSERT_TRUE(manual->StabiliseAll().ok());
  for (uint8_t seed : {5, 6}) {
    ASSERT_TRUE((*r)->Write(0, Pattern(kBlock, seed)).ok());
    ASSERT_TRUE((*r)->Flush().ok());
    EXPECT_TRUE(ledger.Add(store.Snapshot(), 1, &why)) << why;
  }
}

// --- crash consistency ------------------------------------------------------

// One step of the crash workload: apply to the region, and to the model.
struct Step {
  uint64_t offset;
  Bytes data;
  bool rotate;
};

class CrashTest : public RegionTest {};

TEST_F(CrashTest, EveryPersistPointLeavesOldOrNewStateVerifiably) {
  auto base = Create(store_.get());
  ASSERT_TRUE(base->Write(0, Pattern(geometry_.size, 1)).ok());
  ASSERT_TRUE(base->Flush().ok());
  base.reset();
  const Bytes base_image = store_->Snapshot();
  const std::string counter_path = (dir_ / "counter").string();
  std::ifstream in(counter_path, std::ios::binary);
  const std::string counter_bytes((std::istreambuf_iterator<char>(in)), {});

  std::vector<Step> steps;
  std::mt19937_64 rng(3);
  for (int k = 0; k < 6; ++k) {
    const uint64_t off = rng() % (geometry_.size - 6000);
    // At most 7 blocks, so one step is one atomic commit (log capacity 8).
    steps.push_back({off, Pattern(1000 + rng() % 2000, static_cast<uint8_t>(k + 20)), false});
    if (k == 3) steps.push_back({0, {}, true});
  }
  // States[k] = plaintext after k acknowledged steps.
  std::vector<Bytes> states{Pattern(geometry_.size, 1)};
  for (const Step& s : steps) {
    Bytes next = states.back();
    std::copy(s.data.begin(), s.data.end(), next.begin() + s.offset);
    states.push_back(next);
  }

  auto reset_counter = [&] {
    counter_.reset();
    std::ofstream out(counter_path, std::ios::binary | std::ios::trunc);
    out << counter_bytes;
    out.close();
    counter_ = OpenCounter();
  };
  // Run the workload; returns the number of acknowledged steps.
  auto run = [&](CrashingStore* store) -> size_t {
    auto r = Reopen(store);
    if (!r.ok()) return 0;
    size_t acked = 0;
    for (const Step& s : steps) {
      Status st = s.rotate ? (*r)->RotateKey() : (*r)->Write(s.offset, s.data);
      if (st.ok() && !s.rotate) st = (*r)->Flush();
      if (!st.ok()) break;
      ++acked;
    }
    return acked;
  };

  reset_counter();
  CrashingStore dry(base_image, {});
  ASSERT_EQ(run(&dry), steps.size());
  const uint64_t total = dry.persist_calls();
  ASSERT_GT(total, 10u);

  for (uint64_t crash_at = 1; crash_at <= total; ++crash_at) {
    for (uint64_t seed : {1, 2}) {
      reset_counter();
      CrashingStore store(base_image, {crash_at, /*leak_unpersisted=*/true, seed});
      const size_t acked = run(&store);
      ASSERT_TRUE(store.crashed());
      MemoryStore after(0);
      after.bytes() = store.durable();
      auto r = Reopen(&after);
      ASSERT_TRUE(r.ok()) << "crash at persist " << crash_at << ": " << r.status();
      Bytes got(geometry_.size);
      ASSERT_TRUE((*r)->Read(0, got).ok()) << "crash at " << crash_at;
      const bool old_state = got == states[acked];
      const bool new_state = acked + 1 < states.size() && got == states[acked + 1];
      EXPECT_TRUE(old_state || new_state)
          << "crash at persist " << crash_at << " after " << acked << " acknowledged steps";
      // The recovered region keeps working.
      ASSERT_TRUE((*r)->Write(5, Bytes(3, 1)).ok());
      ASSERT_TRUE((*r)->Flush().ok());
    }
  }
}

}  // namespace
}  // namespace cosmos::sec
