// Tests for the metadata redo log: commit, replay of a complete record,
// discard of a torn one, and rejection of impossible records.
#include "pmem/redo_log.h"

#include <gtest/gtest.h>

#include <cstring>

#include "pmem/fault_injection.h"
#include "pmem/layout.h"

namespace cosmos::pmem {
namespace {

constexpr uint64_t kLogOffset = 8192;
constexpr uint64_t kLogSize = layout::kRedoLogSize;
constexpr uint64_t kSize = kLogOffset + kLogSize;

RedoWrite Write(uint64_t offset, const char* text) {
  RedoWrite w{offset, {}};
  w.bytes.resize(std::strlen(text));
  std::memcpy(w.bytes.data(), text, w.bytes.size());
  return w;
}

std::string At(const Mapping& m, uint64_t offset, size_t len) {
  return std::string(reinterpret_cast<const char*>(m.base() + offset), len);
}

TEST(RedoLog, CommitAppliesAllWritesAndLeavesTheLogEmpty) {
  auto medium = FaultInjectionMedium::Create(kSize);
  auto m = medium->Map();
  RedoLog log(m->get(), kLogOffset, kLogSize, 0, kLogOffset, "t");
  ASSERT_TRUE(log.Commit(1, {Write(0, "alpha"), Write(4096, "beta")}).ok());
  EXPECT_EQ(At(**m, 0, 5), "alpha");
  EXPECT_EQ(At(**m, 4096, 4), "beta");
  EXPECT_TRUE(log.CheckEmpty().ok());
  auto fresh = medium->Map();
  EXPECT_EQ(At(**fresh, 4096, 4), "beta");
}

// Crash after the record is durable but before the targets are: recovery
// must apply the record.
TEST(RedoLog, RecoveryReplaysACompleteRecord) {
  auto medium = FaultInjectionMedium::Create(kSize);
  auto m = medium->Map();
  RedoLog log(m->get(), kLogOffset, kLogSize, 0, kLogOffset, "t");
  medium->CrashAtPersistPoint(2);  // 1 = record, 2 = targets
  EXPECT_FALSE(log.Commit(1, {Write(0, "alpha"), Write(4096, "beta")}).ok());
  auto fresh = medium->Map();
  EXPECT_EQ(At(**fresh, 0, 5), std::string(5, '\0'));
  RedoLog again(fresh->get(), kLogOffset, kLogSize, 0, kLogOffset, "t");
  auto outcome = again.Recover(true);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, RecoveryOutcome::kReplayedRecord);
  EXPECT_EQ(At(**fresh, 0, 5), "alpha");
  EXPECT_EQ(At(**fresh, 4096, 4), "beta");
  EXPECT_TRUE(again.CheckEmpty().ok());
}

TEST(RedoLog, RecoveryDiscardsATornRecordWithoutTouchingTargets) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto medium = FaultInjectionMedium::Create(kSize);
    auto m = medium->Map();
    RedoLog log(m->get(), kLogOffset, kLogSize, 0, kLogOffset, "t");
    medium->CrashAtPersistPoint(1, CrashMode::kTearUnpersisted, seed);
    EXPECT_FALSE(log.Commit(1, {Write(0, "alpha-alpha-alpha"), Write(4096, "beta")}).ok());
    auto fresh = medium->Map();
    RedoLog again(fresh->get(), kLogOffset, kLogSize, 0, kLogOffset, "t");
    auto outcome = again.Recover(true);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    if (*outcome == RecoveryOutcome::kReplayedRecord) {
      EXPECT_EQ(At(**fresh, 4096, 4), "beta");  // every word happened to land
    } else {
      EXPECT_EQ(At(**fresh, 4096, 4), std::string(4, '\0'));
    }
    EXPECT_TRUE(again.CheckEmpty().ok());
  }
}

TEST(RedoLog, UnknownMagicIsCorruptionAndNothingChanges) {
  auto medium = FaultInjectionMedium::Create(kSize);
  auto m = medium->Map();
  std::memcpy((*m)->base() + kLogOffset, "garbage!", 8);
  RedoLog log(m->get(), kLogOffset, kLogSize, 0, kLogOffset, "p.pool");
  auto outcome = log.Recover(true);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kCorruption);
  EXPECT_NE(outcome.status().message().find("pool p.pool: redo log"), std::string::npos);
  EXPECT_EQ(At(**m, kLogOffset, 8), "garbage!");
}

TEST(RedoLog, ChecksummedRecordTargetingOutsideTheMetadataIsCorruption) {
  auto medium = FaultInjectionMedium::Create(kSize);
  auto m = medium->Map();
  // A log allowed to write anywhere produces the record; a stricter reader rejects it.
  RedoLog wide(m->get(), kLogOffset, kLogSize, 0, kLogOffset, "t");
  medium->CrashAtPersistPoint(2);
  EXPECT_FALSE(wide.Commit(1, {Write(6000, "x")}).ok());
  auto fresh = medium->Map();
  RedoLog narrow(fresh->get(), kLogOffset, kLogSize, 0, 4096, "t");
  auto outcome = narrow.Recover(true);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kCorruption);
}

TEST(RedoLog, CommitRejectsOversizedRecordsBeforeWriting) {
  auto medium = FaultInjectionMedium::Create(kSize);
  auto m = medium->Map();
  RedoLog log(m->get(), kLogOffset, kLogSize, 0, kLogOffset, "t");
  RedoWrite big{0, std::vector<std::byte>(kLogOffset)};
  EXPECT_EQ(log.Commit(1, {big, big, big}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(medium->persist_points(), 0u);
}

}  // namespace
}  // namespace cosmos::pmem
