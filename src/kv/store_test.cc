// Store tests: put/get/delete, recovery from the durable log, torn tails,
// corruption detection, TTL, full log, large values, compaction, scan.
#include "kv/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "common/checksum.h"
#include "common/endian.h"
#include "kv/log_device_memory.h"

namespace cosmos::kv {
namespace {

std::unique_ptr<Store> OpenOrDie(LogDevice* dev, StoreOptions opts = {}) {
  auto s = Store::Open(dev, std::move(opts));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

uint64_t PutSync(Store* s, std::string_view k, std::string_view v, int64_t expiry = 0) {
  WriteBatch b;
  b.Put(k, v, expiry);
  auto seq = s->Apply(b);
  EXPECT_TRUE(seq.ok()) << seq.status();
  EXPECT_TRUE(s->WaitDurable(*seq).ok());
  return *seq;
}

std::optional<std::string> GetOrNull(Store* s, std::string_view k) {
  std::string v;
  auto r = s->Get(k, &v);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok() || !*r) return std::nullopt;
  return v;
}

TEST(Store, PutGetDelete) {
  MemoryLogDevice dev(1 << 20);
  auto s = OpenOrDie(&dev);
  PutSync(s.get(), "a", "1");
  PutSync(s.get(), "b", "2");
  EXPECT_EQ(GetOrNull(s.get(), "a"), "1");
  WriteBatch b;
  b.Delete("a");
  ASSERT_TRUE(s->WaitDurable(*s->Apply(b)).ok());
  EXPECT_EQ(GetOrNull(s.get(), "a"), std::nullopt);
  EXPECT_EQ(s->KeyCount(), 1u);
}

TEST(Store, RecoversDurableWritesAfterCrash) {
  MemoryLogDevice dev(1 << 20);
  {
    auto s = OpenOrDie(&dev);
    for (int i = 0; i < 100; ++i)
      PutSync(s.get(), "k" + std::to_string(i), "v" + std::to_string(i));
    WriteBatch b;
    b.Delete("k5");
    ASSERT_TRUE(s->WaitDurable(*s->Apply(b)).ok());
  }
  dev.Crash(7);
  auto s = OpenOrDie(&dev);
  EXPECT_EQ(s->KeyCount(), 99u);
  EXPECT_EQ(GetOrNull(s.get(), "k42"), "v42");
  EXPECT_EQ(GetOrNull(s.get(), "k5"), std::nullopt);
  // New writes continue after the recovered tail with higher sequences.
  uint64_t seq = PutSync(s.get(), "new", "x");
  EXPECT_GT(seq, 101u);
}

TEST(Store, UnflushedWritesVanishWholeAfterCrash) {
  MemoryLogDevice dev(1 << 20);
  {
    StoreOptions o;
    auto s = OpenOrDie(&dev, o);
    PutSync(s.get(), "durable", "yes");
    dev.CrashAtPersistPoint(dev.persist_count() + 1);  // the next flush never completes
    WriteBatch b;
    b.Put("lost1", "x");
    b.Put("lost2", "y");
    auto seq = s->Apply(b);
    ASSERT_TRUE(seq.ok());
    EXPECT_FALSE(s->WaitDurable(*seq).ok());
  }
  dev.Crash(99);  // torn: random words of the unflushed batch survive
  auto s = OpenOrDie(&dev);
  EXPECT_EQ(GetOrNull(s.get(), "durable"), "yes");
  EXPECT_EQ(GetOrNull(s.get(), "lost1"), std::nullopt);
  EXPECT_EQ(GetOrNull(s.get(), "lost2"), std::nullopt);
}

TEST(Store, ChecksumMismatchBeforeTailIsCorruption) {
  MemoryLogDevice dev(1 << 20);
  {
    auto s = OpenOrDie(&dev);
    PutSync(s.get(), "key", "value");
  }
  // Flip a byte of the first record's value (after header + segment header).
  const uint64_t off = kHeaderAreaSize + kSegmentHeaderSize + kRecordHeaderSize + 3;
  char c;
  ASSERT_TRUE(dev.Read(off, &c, 1).ok());
  c ^= 0x40;
  ASSERT_TRUE(dev.Write(off, &c, 1).ok());
  ASSERT_TRUE(dev.Flush(off, 1).ok());
  auto s = Store::Open(&dev);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption);
  EXPECT_NE(s.status().message().find("checksum"), std::string::npos);
}

TEST(Store, BadSuperblockIsCorruption) {
  MemoryLogDevice dev(1 << 20);
  { auto s = OpenOrDie(&dev); }
  char c = 0x55;
  ASSERT_TRUE(dev.Write(20, &c, 1).ok());
  auto s = Store::Open(&dev);
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption);
}

TEST(Store, TooSmallDeviceIsRejected) {
  MemoryLogDevice dev(4096);
  EXPECT_EQ(Store::Open(&dev).status().code(), StatusCode::kInvalidArgument);
}

TEST(Store, LazyExpiryUsesAbsoluteTimeAcrossRestart) {
  MemoryLogDevice dev(1 << 20);
  std::atomic<int64_t> now{1'000'000};
  StoreOptions o;
  o.now_ms = [&] { return now.load(); };
  {
    auto s = OpenOrDie(&dev, o);
    PutSync(s.get(), "t", "v", now + 1000);
    PutSync(s.get(), "p", "v");
    EXPECT_EQ(GetOrNull(s.get(), "t"), "v");
    now += 1000;
    EXPECT_EQ(GetOrNull(s.get(), "t"), std::nullopt);
    now -= 1000;
  }
  auto s = OpenOrDie(&dev, o);
  EXPECT_EQ(GetOrNull(s.get(), "t"), "v");
  auto info = s->Lookup("t");
  ASSERT_TRUE(info.ok() && info->has_value());
  EXPECT_EQ((*info)->expiry_ms, 1'001'000);
  now += 5000;
  EXPECT_EQ(GetOrNull(s.get(), "t"), std::nullopt);
  EXPECT_EQ(GetOrNull(s.get(), "p"), "v");
}

TEST(Store, ExpireRecordSurvivesRestart) {
  MemoryLogDevice dev(1 << 20);
  std::atomic<int64_t> now{5000};
  StoreOptions o;
  o.now_ms = [&] { return now.load(); };
  {
    auto s = OpenOrDie(&dev, o);
    PutSync(s.get(), "k", "v");
    WriteBatch b;
    b.Expire("k", 6000);
    ASSERT_TRUE(s->WaitDurable(*s->Apply(b)).ok());
  }
  now = 7000;
  auto s = OpenOrDie(&dev, o);
  EXPECT_EQ(GetOrNull(s.get(), "k"), std::nullopt);
}

TEST(Store, FullLogIsResourceExhaustedAndLosesNothing) {
  MemoryLogDevice dev(256 * 1024);
  StoreOptions o;
  o.background_compaction = false;
  auto s = OpenOrDie(&dev, o);
  const std::string v(1000, 'x');
  int written = 0;
  for (;; ++written) {
    WriteBatch b;
    const std::string k = "key" + std::to_string(written);
    b.Put(k, v);
    auto seq = s->Apply(b);
    if (!seq.ok()) {
      EXPECT_EQ(seq.status().code(), StatusCode::kResourceExhausted);
      EXPECT_NE(seq.status().message().find("log full"), std::string::npos);
      break;
    }
    ASSERT_TRUE(s->WaitDurable(*seq).ok());
  }
  EXPECT_GT(written, 50);
  for (int i = 0; i < written; ++i) {
    EXPECT_EQ(GetOrNull(s.get(), "key" + std::to_string(i)), v);
  }
  s.reset();
  auto r = OpenOrDie(&dev, o);
  EXPECT_EQ(r->KeyCount(), static_cast<uint64_t>(written));
}

TEST(Store, FullLogCompactsGarbageInsteadOfFailing) {
  MemoryLogDevice dev(256 * 1024);
  StoreOptions o;
  o.background_compaction = false;
  auto s = OpenOrDie(&dev, o);
  const std::string v(1000, 'y');
  for (int i = 0; i < 1000; ++i) PutSync(s.get(), "same", v + std::to_string(i));
  EXPECT_EQ(GetOrNull(s.get(), "same"), v + "999");
  EXPECT_GT(s->Stats().compactions, 0u);
}

TEST(Store, RejectsValueAboveCap) {
  MemoryLogDevice dev(1 << 20);
  StoreOptions o;
  o.max_value_size = 100;
  auto s = OpenOrDie(&dev, o);
  WriteBatch b;
  const std::string big(101, 'z');
  b.Put("k", big);
  EXPECT_EQ(s->Apply(b).status().code(), StatusCode::kInvalidArgument);
}

TEST(Store, LargeValueOf64MiBRoundTripsAndRecovers) {
  MemoryLogDevice dev(160ull << 20);
  std::string big(64ull << 20, '\0');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  {
    auto s = OpenOrDie(&dev);
    PutSync(s.get(), "big", big);
    std::string got;
    ASSERT_TRUE(*s->Get("big", &got));
    EXPECT_TRUE(got == big);
  }
  dev.Crash();
  auto s = OpenOrDie(&dev);
  std::string got;
  ASSERT_TRUE(*s->Get("big", &got));
  EXPECT_TRUE(got == big);
}

TEST(Store, CompactionKeepsLiveDataAndReclaimsSpace) {
  MemoryLogDevice dev(1 << 20);
  StoreOptions o;
  o.background_compaction = false;
  auto s = OpenOrDie(&dev, o);
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 200; ++i) {
      PutSync(s.get(), "k" + std::to_string(i), "r" + std::to_string(round));
    }
  }
  WriteBatch b;
  b.Delete("k0");
  ASSERT_TRUE(s->WaitDurable(*s->Apply(b)).ok());
  const uint64_t before = s->Stats().log_used;
  ASSERT_TRUE(s->Compact().ok());
  EXPECT_LT(s->Stats().log_used, before / 3);
  EXPECT_EQ(s->Stats().generation, 1u);
  EXPECT_EQ(GetOrNull(s.get(), "k7"), "r4");
  EXPECT_EQ(GetOrNull(s.get(), "k0"), std::nullopt);
  PutSync(s.get(), "after", "compaction");
  s.reset();
  dev.Crash();
  auto r = OpenOrDie(&dev, o);
  EXPECT_EQ(r->KeyCount(), 200u);
  EXPECT_EQ(GetOrNull(r.get(), "k199"), "r4");
  EXPECT_EQ(GetOrNull(r.get(), "after"), "compaction");
}

TEST(Store, BackgroundCompactionRunsWhileWritersContinue) {
  MemoryLogDevice dev(512 * 1024);
  auto s = OpenOrDie(&dev);
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      std::string v;
      auto r = s->Get("k3", &v);
      ASSERT_TRUE(r.ok());
    }
  });
  for (int i = 0; i < 20000; ++i) {
    WriteBatch b;
    const std::string k = "k" + std::to_string(i % 10);
    const std::string v = std::string(40, 'v') + std::to_string(i);
    b.Put(k, v);
    auto seq = s->Apply(b);
    ASSERT_TRUE(seq.ok()) << seq.status();
    if (i % 64 == 0) {
      ASSERT_TRUE(s->WaitDurable(*seq).ok());
    }
  }
  stop = true;
  reader.join();
  EXPECT_GT(s->Stats().compactions, 0u);
  for (int i = 19990; i < 20000; ++i) {
    EXPECT_EQ(GetOrNull(s.get(), "k" + std::to_string(i % 10)),
              std::string(40, 'v') + std::to_string(i));
  }
  s.reset();
  auto r = OpenOrDie(&dev);
  EXPECT_EQ(GetOrNull(r.get(), "k9"), std::string(40, 'v') + "19999");
}

TEST(Store, GroupCommitSharesFlushesAcrossWriters) {
  MemoryLogDevice dev(4 << 20);
  auto s = OpenOrDie(&dev);
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        WriteBatch b;
        const std::string k = std::to_string(t) + ":" + std::to_string(i);
        b.Put(k, "v");
        auto seq = s->Apply(b);
        ASSERT_TRUE(seq.ok());
        ASSERT_TRUE(s->WaitDurable(*seq).ok());
      }
    });
  }
  for (auto& t : ts) t.join();
  const auto st = s->Stats();
  EXPECT_EQ(st.records_committed, 1600u);
  EXPECT_LE(st.group_commits, 1600u);
  EXPECT_EQ(st.durable_sequence, st.last_sequence);
}

TEST(Store, FlushFailureFailsStoreAndKeepsDurableState) {
  MemoryLogDevice dev(1 << 20);
  {
    auto s = OpenOrDie(&dev);
    PutSync(s.get(), "a", "1");
    dev.FailNextPersists(1);
    WriteBatch b;
    b.Put("b", "2");
    auto seq = s->Apply(b);
    ASSERT_TRUE(seq.ok());
    Status w = s->WaitDurable(*seq);
    EXPECT_EQ(w.code(), StatusCode::kFailedPrecondition);
    WriteBatch c;
    c.Put("c", "3");
    EXPECT_EQ(s->Apply(c).status().code(), StatusCode::kFailedPrecondition);
  }
  dev.Crash();
  auto s = OpenOrDie(&dev);
  EXPECT_EQ(GetOrNull(s.get(), "a"), "1");
  EXPECT_EQ(GetOrNull(s.get(), "b"), std::nullopt);
}

TEST(Store, ScanVisitsEveryKeyOnceWithoutChanges) {
  MemoryLogDevice dev(4 << 20);
  auto s = OpenOrDie(&dev);
  WriteBatch b;
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back("key:" + std::to_string(i));
  for (const auto& k : keys) b.Put(k, "v");
  ASSERT_TRUE(s->WaitDurable(*s->Apply(b)).ok());
  std::multiset<std::string> seen;
  uint64_t cursor = 0;
  int calls = 0;
  do {
    std::vector<std::string> out;
    auto next = s->Scan(cursor, "*", 37, &out);
    ASSERT_TRUE(next.ok());
    cursor = *next;
    seen.insert(out.begin(), out.end());
    ++calls;
  } while (cursor != 0);
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 1000u);
  EXPECT_GT(calls, 20);
  std::vector<std::string> matched;
  ASSERT_TRUE(s->Scan(0, "key:99?", 100000, &matched).ok());
  EXPECT_EQ(matched.size(), 10u);
}

TEST(GlobMatch, MatchesRedisPatterns) {
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_TRUE(GlobMatch("h*llo", "heeeello"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(GlobMatch("h\\*llo", "h*llo"));
  EXPECT_FALSE(GlobMatch("h\\*llo", "hello"));
  EXPECT_FALSE(GlobMatch("a*b", "acd"));
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_FALSE(GlobMatch("[", "x"));
}

// Format v2: a commit flushes only its records; the tail word lags. A
// commit group past the tail word is recovered when it is complete and was
// written by the last open.
TEST(Store, AcknowledgedGroupsPastAStaleTailWordAreRecoveredWhole) {
  MemoryLogDevice dev(1 << 20);
  uint64_t used_before = 0;
  {
    auto s = OpenOrDie(&dev);
    PutSync(s.get(), "base", "0");
    used_before = s->Stats().log_used;
    WriteBatch b;
    b.Put("m1", "one");
    b.Put("m2", "two");
    b.Put("m3", "three");
    ASSERT_TRUE(s->WaitDurable(*s->Apply(b)).ok());
  }
  // As if power failed before the tail word caught up.
  ASSERT_TRUE(dev.WriteAfterFlush(kTailOffset0, used_before).ok());
  {
    auto s = OpenOrDie(&dev);
    EXPECT_EQ(GetOrNull(s.get(), "m1"), "one");
    EXPECT_EQ(GetOrNull(s.get(), "m3"), "three");
  }
  // Now tear the group's last record: none of the group may appear.
  uint64_t tail_word = 0;
  ASSERT_TRUE(dev.Read(kTailOffset0, &tail_word, 8).ok());
  ASSERT_TRUE(dev.WriteAfterFlush(kTailOffset0, used_before).ok());
  const uint64_t last_byte = kHeaderAreaSize + kSegmentHeaderSize + tail_word - 9;
  char c = 0;
  ASSERT_TRUE(dev.Read(last_byte, &c, 1).ok());
  c ^= 0x20;
  ASSERT_TRUE(dev.Write(last_byte, &c, 1).ok());
  ASSERT_TRUE(dev.Flush(last_byte, 1).ok());
  auto s = OpenOrDie(&dev);
  EXPECT_EQ(GetOrNull(s.get(), "base"), "0");
  EXPECT_EQ(GetOrNull(s.get(), "m1"), std::nullopt);
  EXPECT_EQ(GetOrNull(s.get(), "m2"), std::nullopt);
  EXPECT_EQ(GetOrNull(s.get(), "m3"), std::nullopt);
}

// A record left past the tail by an earlier open must never join a later
// open's commit group, even when its sequence number happens to follow.
TEST(Store, StaleRecordOfAnEarlierOpenIsNotResurrected) {
  MemoryLogDevice dev(1 << 20);
  uint64_t used_before = 0;
  const uint64_t records = kHeaderAreaSize + kSegmentHeaderSize;
  {
    auto s = OpenOrDie(&dev);
    PutSync(s.get(), "base", "0");
    used_before = s->Stats().log_used;
    WriteBatch x;  // X = {a, b}: a will be torn, b survives intact
    x.Put("a", "AAAAAAAA");
    x.Put("b", "BBBBBBBB");
    ASSERT_TRUE(s->WaitDurable(*s->Apply(x)).ok());
  }
  ASSERT_TRUE(dev.WriteAfterFlush(kTailOffset0, used_before).ok());
  const uint64_t a_value = records + used_before + kRecordHeaderSize + 1;
  char c = 0;
  ASSERT_TRUE(dev.Read(a_value, &c, 1).ok());
  c ^= 0x01;
  ASSERT_TRUE(dev.Write(a_value, &c, 1).ok());
  ASSERT_TRUE(dev.Flush(a_value, 1).ok());
  {
    auto s = OpenOrDie(&dev);  // X is incomplete: dropped
    EXPECT_EQ(GetOrNull(s.get(), "a"), std::nullopt);
    EXPECT_EQ(GetOrNull(s.get(), "b"), std::nullopt);
    // Y = {c} takes a's place: same size, same sequence number, so b's stale
    // record directly follows it with the next sequence number.
    PutSync(s.get(), "c", "CCCCCCCC");
  }
  ASSERT_TRUE(dev.WriteAfterFlush(kTailOffset0, used_before).ok());
  auto s = OpenOrDie(&dev);
  EXPECT_EQ(GetOrNull(s.get(), "c"), "CCCCCCCC");
  EXPECT_EQ(GetOrNull(s.get(), "b"), std::nullopt);  // rejected by its open epoch
}

TEST(Store, FormatV1LogIsUpgradedInPlace) {
  MemoryLogDevice dev(1 << 20);
  {
    auto s = OpenOrDie(&dev);
    PutSync(s.get(), "old", "format");
  }
  // Rewrite the superblock as version 1 (v1 had no open epoch word).
  char sb[kSuperblockSize];
  ASSERT_TRUE(dev.Read(0, sb, sizeof(sb)).ok());
  StoreLE<uint32_t>(sb + SuperblockLayout::kVersion, 1);
  StoreLE<uint64_t>(sb + SuperblockLayout::kChecksum,
                    Checksum64(sb, SuperblockLayout::kChecksum, kSuperblockSeed));
  ASSERT_TRUE(dev.Write(0, sb, sizeof(sb)).ok());
  ASSERT_TRUE(dev.Flush(0, sizeof(sb)).ok());
  ASSERT_TRUE(dev.WriteAfterFlush(kOpenEpochOffset, 0).ok());
  {
    auto s = OpenOrDie(&dev);
    EXPECT_EQ(GetOrNull(s.get(), "old"), "format");
  }
  ASSERT_TRUE(dev.Read(0, sb, sizeof(sb)).ok());
  EXPECT_EQ(LoadLE<uint32_t>(sb + SuperblockLayout::kVersion), kFormatVersion);
  // A version above this build's is refused with a clear error.
  StoreLE<uint32_t>(sb + SuperblockLayout::kVersion, kFormatVersion + 1);
  StoreLE<uint64_t>(sb + SuperblockLayout::kChecksum,
                    Checksum64(sb, SuperblockLayout::kChecksum, kSuperblockSeed));
  ASSERT_TRUE(dev.Write(0, sb, sizeof(sb)).ok());
  ASSERT_TRUE(dev.Flush(0, sizeof(sb)).ok());
  auto bad = Store::Open(&dev);
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace cosmos::kv
