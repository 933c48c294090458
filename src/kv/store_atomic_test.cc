// Tests of Store atomic sections (the basis of EXEC): the records of every
// Apply between BeginAtomic and EndAtomic form one commit group, so recovery
// applies them all or none, and they share one commit.
#include <gtest/gtest.h>

#include "kv/log_device_memory.h"
#include "kv/log_format.h"
#include "kv/store.h"

namespace cosmos::kv {
namespace {

StoreOptions NoCompaction() {
  StoreOptions o;
  o.background_compaction = false;
  return o;
}

uint64_t ApplyPut(Store* s, std::string_view key, std::string_view value) {
  WriteBatch b;
  b.Put(key, value);
  auto seq = s->Apply(b);
  EXPECT_TRUE(seq.ok()) << seq.status();
  return seq.ok() ? *seq : 0;
}

TEST(StoreAtomic, SectionIsOneCommit) {
  MemoryLogDevice dev(1 << 20);
  auto s = Store::Open(&dev, NoCompaction());
  ASSERT_TRUE(s.ok());
  const uint64_t commits = (*s)->Stats().group_commits;
  (*s)->BeginAtomic();
  ApplyPut(s->get(), "a", "1");
  (*s)->RequestFlush();  // the flusher must not take part of the section
  const uint64_t last = ApplyPut(s->get(), "b", "2");
  (*s)->EndAtomic();
  ASSERT_TRUE((*s)->WaitDurable(last).ok());
  EXPECT_EQ((*s)->Stats().group_commits, commits + 1);
}

// Two records of one section are committed; the tail word is left stale (a
// crash before it is persisted), and the second record is damaged. Recovery
// past the tail must drop the first record too: only the section's last
// record carries the batch-end flag.
TEST(StoreAtomic, RecoveryDropsAnIncompleteSection) {
  MemoryLogDevice dev(1 << 20);
  {
    auto s = Store::Open(&dev, NoCompaction());
    ASSERT_TRUE(s.ok());
    (*s)->BeginAtomic();
    ApplyPut(s->get(), "a", "first");
    const uint64_t last = ApplyPut(s->get(), "b", "second");
    (*s)->EndAtomic();
    ASSERT_TRUE((*s)->WaitDurable(last).ok());
    dev.CrashAtPersistPoint(dev.persist_count() + 1);  // the tail word never lands
  }
  dev.Crash();
  const uint64_t first = kHeaderAreaSize + kSegmentHeaderSize;
  const uint64_t second = first + RecordSize(1, 5);
  char byte = 0x5a;
  ASSERT_TRUE(dev.Write(second + kRecordHeaderSize + 1, &byte, 1).ok());  // damage "second"
  ASSERT_TRUE(dev.Flush(second, kRecordHeaderSize + 8).ok());
  auto s = Store::Open(&dev, NoCompaction());
  ASSERT_TRUE(s.ok()) << s.status();
  std::string v;
  EXPECT_FALSE(*(*s)->Get("a", &v)) << "half of an atomic section was recovered";
  EXPECT_FALSE(*(*s)->Get("b", &v));
}

// Control: undamaged, both records of the section are recovered past the
// stale tail word.
TEST(StoreAtomic, RecoveryAppliesACompleteSection) {
  MemoryLogDevice dev(1 << 20);
  {
    auto s = Store::Open(&dev, NoCompaction());
    ASSERT_TRUE(s.ok());
    (*s)->BeginAtomic();
    ApplyPut(s->get(), "a", "first");
    const uint64_t last = ApplyPut(s->get(), "b", "second");
    (*s)->EndAtomic();
    ASSERT_TRUE((*s)->WaitDurable(last).ok());
    dev.CrashAtPersistPoint(dev.persist_count() + 1);
  }
  dev.Crash();
  auto s = Store::Open(&dev, NoCompaction());
  ASSERT_TRUE(s.ok()) << s.status();
  std::string v;
  EXPECT_TRUE(*(*s)->Get("a", &v));
  EXPECT_EQ(v, "first");
  EXPECT_TRUE(*(*s)->Get("b", &v));
}

}  // namespace
}  // namespace cosmos::kv
