// Tests for Pool and Region: lifecycle, persistence across reopen, the data
// path, metadata slots, and every kind of bad input the issue lists.
#include "pmem/pool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "pmem/fault_injection.h"

// libpmem2 1.12 keeps internal bookkeeping of pmem2_map_from_existing()
// mappings alive past pmem2_map_delete(); LeakSanitizer (clang builds)
// reports it although our code frees everything it owns.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpmem2.so\n"; }

namespace cosmos::pmem {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kPoolSize = 1 << 20;

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cosmos_pool_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/test.pool";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<char> ReadFile() const {
    std::ifstream in(path_, std::ios::binary);
    return std::vector<char>((std::istreambuf_iterator<char>(in)), {});
  }
  void WriteFile(const std::vector<char>& bytes) const {
    if (fs::exists(path_)) fs::permissions(path_, fs::perms::owner_read | fs::perms::owner_write);
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  void Poke(uint64_t offset, const void* bytes, size_t len) const {
    int fd = open(path_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, bytes, len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
    close(fd);
  }
  void MakeSamplePool() {
    auto pool = Pool::Create(path_, kPoolSize, {.backend = BackendKind::kFile});
    ASSERT_TRUE(pool.ok()) << pool.status();
    auto r = (*pool)->CreateRegion("alpha", 10000);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->MemcpyPersist(0, "persisted", 9).ok());
  }
  // Opening must fail with `code`, mention `needle`, and leave the file as is.
  void ExpectOpenFails(StatusCode code, const std::string& needle) {
    const auto before = ReadFile();
    auto pool = Pool::Open(path_);
    ASSERT_FALSE(pool.ok());
    EXPECT_EQ(pool.status().code(), code) << pool.status();
    EXPECT_NE(pool.status().message().find(needle), std::string::npos) << pool.status();
    EXPECT_NE(pool.status().message().find(path_), std::string::npos) << pool.status();
    EXPECT_EQ(ReadFile(), before);
  }

  std::string dir_;
  std::string path_;
};

TEST_F(PoolTest, CreatedPoolReopensWithItsRegionsAndData) {
  MakeSamplePool();
  auto pool = Pool::Open(path_);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto regions = (*pool)->ListRegions();
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(regions[0].name, "alpha");
  EXPECT_EQ(regions[0].size, 10000u);
  auto r = (*pool)->OpenRegion("alpha");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::memcmp(r->data(), "persisted", 9), 0);
  EXPECT_TRUE((*pool)->Check().ok());
  const PoolInfo info = (*pool)->Info();
  EXPECT_EQ(info.format_version, 1u);
  EXPECT_EQ(info.region_count, 1u);
  // Honest: page on a disk file system, none where /tmp is tmpfs.
  struct statfs fs {};
  ASSERT_EQ(statfs(dir_.c_str(), &fs), 0);
  EXPECT_EQ(info.durability,
            fs.f_type == TMPFS_MAGIC ? DurabilityLevel::kNone : DurabilityLevel::kPage);
  EXPECT_EQ(info.recovery, RecoveryOutcome::kClean);
  EXPECT_EQ(info.uuid.size(), 36u);
}

TEST_F(PoolTest, CreateRefusesAnExistingPath) {
  MakeSamplePool();
  auto again = Pool::Create(path_, kPoolSize);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
}

TEST_F(PoolTest, CreateInAMissingDirectoryIsNotFound) {
  auto pool = Pool::Create(dir_ + "/no/such/dir/p.pool", kPoolSize);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), StatusCode::kNotFound);
  EXPECT_NE(pool.status().message().find("directory"), std::string::npos) << pool.status();
}

TEST_F(PoolTest, CreateRejectsATooSmallSize) {
  auto pool = Pool::Create(path_, 8192);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(path_));
  EXPECT_FALSE(fs::exists(path_ + ".creating"));
}

TEST_F(PoolTest, DeletedRegionFreesItsSpaceAndIsZeroedOnReuse) {
  auto pool = Pool::Create(path_, kPoolSize);
  ASSERT_TRUE(pool.ok());
  {
    auto r = (*pool)->CreateRegion("a", 4096);
    ASSERT_TRUE(r.ok());
    std::memset(r->data(), 0x5a, 4096);
    ASSERT_TRUE(r->Persist(0, 4096).ok());
    EXPECT_EQ((*pool)->DeleteRegion("a").code(), StatusCode::kFailedPrecondition);  // open handle
  }
  ASSERT_TRUE((*pool)->DeleteRegion("a").ok());
  EXPECT_EQ((*pool)->DeleteRegion("a").code(), StatusCode::kNotFound);
  auto b = (*pool)->CreateRegion("b", 4096);
  ASSERT_TRUE(b.ok());
  for (uint64_t i = 0; i < 4096; ++i) ASSERT_EQ(b->data()[i], std::byte{0});
  EXPECT_GT(b->id(), 1u);  // ids are not reused
}

TEST_F(PoolTest, DuplicateAndBadNamesAreRejected) {
  auto pool = Pool::Create(path_, kPoolSize);
  ASSERT_TRUE(pool.ok());
  ASSERT_TRUE((*pool)->CreateRegion("dup", 100).ok());
  EXPECT_EQ((*pool)->CreateRegion("dup", 100).status().code(), StatusCode::kAlreadyExists);
  auto long_name = (*pool)->CreateRegion(std::string(64, 'x'), 100);
  EXPECT_EQ(long_name.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(long_name.status().message().find("limit is 63"), std::string::npos);
  EXPECT_TRUE((*pool)->CreateRegion(std::string(63, 'y'), 100).ok());
  EXPECT_EQ((*pool)->CreateRegion("", 100).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*pool)->CreateRegion("a/b", 100).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*pool)->CreateRegion("zero", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*pool)->ListRegions().size(), 2u);
}

TEST_F(PoolTest, FullPoolAndFullTableAreResourceExhausted) {
  auto pool = Pool::Create(path_, kPoolSize, {.max_regions = 2});
  ASSERT_TRUE(pool.ok());
  const uint64_t data = (*pool)->Info().data_size;
  auto big = (*pool)->CreateRegion("big", data + 1);
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("pool full"), std::string::npos);
  ASSERT_TRUE((*pool)->CreateRegion("half", data / 2).ok());
  ASSERT_TRUE((*pool)->CreateRegion("rest", 4096).ok());
  auto third = (*pool)->CreateRegion("third", 4096);
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("region table full"), std::string::npos);
}

TEST_F(PoolTest, OutOfRangeOffsetsAreRejected) {
  auto pool = Pool::Create(path_, kPoolSize);
  auto r = (*pool)->CreateRegion("r", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->Persist(0, 1000).ok());
  EXPECT_TRUE(r->Persist(1000, 0).ok());
  EXPECT_EQ(r->Persist(0, 1001).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->Flush(1001, 0).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->Persist(8, UINT64_MAX).code(), StatusCode::kOutOfRange);  // overflow
  EXPECT_EQ(r->MemcpyPersist(999, "ab", 2).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->AtomicStore64(996, 1).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->AtomicStore64(4, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(r->AtomicStore64(8, 42).ok());
  uint64_t v;
  std::memcpy(&v, r->data() + 8, 8);
  EXPECT_EQ(v, 42u);
}

TEST_F(PoolTest, MetadataSlotRoundTripsAcrossReopen) {
  {
    auto pool = Pool::Create(path_, kPoolSize);
    auto r = (*pool)->CreateRegion("m", 100);
    ASSERT_TRUE(r.ok());
    auto empty = r->ReadMetadata();
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE(empty->empty());
    std::vector<std::byte> meta(200, std::byte{0x11});
    ASSERT_TRUE(r->WriteMetadata(meta).ok());
    std::vector<std::byte> too_big(257);
    EXPECT_EQ(r->WriteMetadata(too_big).code(), StatusCode::kInvalidArgument);
  }
  auto pool = Pool::Open(path_);
  ASSERT_TRUE(pool.ok());
  auto r = (*pool)->OpenRegion("m");
  auto meta = r->ReadMetadata();
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(*meta, std::vector<std::byte>(200, std::byte{0x11}));
}

TEST_F(PoolTest, ConcurrentPersistsFromManyThreadsAllSucceed) {
  auto pool = Pool::Create(path_, kPoolSize);
  auto r = (*pool)->CreateRegion("c", 64 * 1024);
  ASSERT_TRUE(r.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 50; ++i) {
        const uint64_t off = static_cast<uint64_t>(t) * 8192 + i * 64;
        EXPECT_TRUE(r->AtomicStore64(off, i + 1).ok());
        EXPECT_TRUE(r->MemcpyPersist(off + 8, &i, sizeof(i)).ok());
        EXPECT_TRUE(r->Flush(off, 16).ok());
        EXPECT_TRUE(r->Drain().ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  r = Status::Cancelled("drop the handle");
  ASSERT_TRUE((*pool)->Close().ok());
  auto reopened = Pool::Open(path_);
  ASSERT_TRUE(reopened.ok());
  auto again = (*reopened)->OpenRegion("c");
  uint64_t v;
  std::memcpy(&v, again->data() + 7 * 8192 + 49 * 64, 8);
  EXPECT_EQ(v, 50u);
}

TEST_F(PoolTest, CloseWithOpenHandlesFails) {
  auto pool = Pool::Create(path_, kPoolSize);
  auto r = (*pool)->CreateRegion("h", 100);
  EXPECT_EQ((*pool)->Close().code(), StatusCode::kFailedPrecondition);
  r = Status::Cancelled("drop");
  EXPECT_TRUE((*pool)->Close().ok());
  EXPECT_EQ((*pool)->CreateRegion("x", 1).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(PoolTest, RegionHandleOutlivesThePoolObject) {
  auto pool = Pool::Create(path_, kPoolSize);
  ASSERT_TRUE(pool.ok());
  auto r = (*pool)->CreateRegion("keep", 4096);
  ASSERT_TRUE(r.ok());
  pool = Status::Cancelled("destroy the Pool object; the handle keeps the mapping");
  std::memcpy(r->data(), "still mapped", 12);
  EXPECT_TRUE(r->Persist(0, 12).ok());
}

TEST_F(PoolTest, ConcurrentMetadataOperationsKeepThePoolConsistent) {
  auto pool = Pool::Create(path_, 4 << 20, {.max_regions = 32});
  ASSERT_TRUE(pool.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string name = "t" + std::to_string(t) + "-" + std::to_string(i % 3);
        if (i % 2 == 0) {
          auto r = (*pool)->CreateRegion(name, 4096 * static_cast<uint64_t>(1 + i % 4));
          if (r.ok()) {
            const std::byte meta[4] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
            EXPECT_TRUE(r->WriteMetadata(meta).ok());
          }
        } else {
          (*pool)->DeleteRegion(name).IgnoreError();  // may not exist: that is the point
        }
        (*pool)->ListRegions();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE((*pool)->Check().ok());
  const auto before = (*pool)->ListRegions();
  ASSERT_TRUE((*pool)->Close().ok());
  auto reopened = Pool::Open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->ListRegions().size(), before.size());
}

TEST_F(PoolTest, SecondReadWriteOpenIsUnavailable) {
  MakeSamplePool();
  auto first = Pool::Open(path_);
  ASSERT_TRUE(first.ok());
  auto second = Pool::Open(path_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

TEST_F(PoolTest, ReadOnlyFileNeedsReadOnlyOpenAndIsNeverWritten) {
  MakeSamplePool();
  ASSERT_EQ(chmod(path_.c_str(), 0444), 0);
  const auto before = ReadFile();
  auto rw = Pool::Open(path_);
  ASSERT_FALSE(rw.ok());
  EXPECT_EQ(rw.status().code(), StatusCode::kPermissionDenied);
  auto ro = Pool::Open(path_, {.read_only = true});
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_TRUE((*ro)->Info().read_only);
  EXPECT_EQ((*ro)->CreateRegion("n", 10).status().code(), StatusCode::kFailedPrecondition);
  auto r = (*ro)->OpenRegion("alpha");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::memcmp(r->data(), "persisted", 9), 0);
  EXPECT_EQ(r->Persist(0, 1).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*ro)->Check().ok());
  EXPECT_EQ(ReadFile(), before);
}

TEST_F(PoolTest, MissingFileIsNotFound) {
  auto pool = Pool::Open(path_);
  EXPECT_EQ(pool.status().code(), StatusCode::kNotFound);
}

TEST_F(PoolTest, TruncatedFileIsCorruption) {
  MakeSamplePool();
  auto bytes = ReadFile();
  bytes.resize(bytes.size() / 2);
  WriteFile(bytes);
  ExpectOpenFails(StatusCode::kCorruption, "truncated");
  bytes.resize(100);
  WriteFile(bytes);
  ExpectOpenFails(StatusCode::kCorruption, "truncated");
}

TEST_F(PoolTest, WrongMagicIsCorruption) {
  MakeSamplePool();
  Poke(0, "NOTAPOOL", 8);
  ExpectOpenFails(StatusCode::kCorruption, "bad magic");
}

TEST_F(PoolTest, WrongVersionIsFailedPrecondition) {
  MakeSamplePool();
  const uint32_t v2 = 2;
  Poke(offsetof(layout::PoolHeader, version), &v2, sizeof(v2));
  ExpectOpenFails(StatusCode::kFailedPrecondition, "unsupported format version 2");
}

TEST_F(PoolTest, HeaderChecksumMismatchIsCorruption) {
  MakeSamplePool();
  const uint64_t at = offsetof(layout::PoolHeader, created_unix_ns);
  const char flipped = static_cast<char>(ReadFile()[at] ^ 0x01);
  Poke(at, &flipped, 1);
  ExpectOpenFails(StatusCode::kCorruption, "header: checksum mismatch");
}

TEST_F(PoolTest, RegionTableChecksumMismatchIsCorruption) {
  MakeSamplePool();
  Poke(layout::kRegionTableOffset + offsetof(layout::RegionEntry, name), "b", 1);
  ExpectOpenFails(StatusCode::kCorruption, "region table entry 0: checksum mismatch");
}

TEST_F(PoolTest, StateChecksumMismatchIsCorruption) {
  MakeSamplePool();
  const char flipped = static_cast<char>(ReadFile()[layout::kStateOffset + 3] ^ 0x01);
  Poke(layout::kStateOffset + 3, &flipped, 1);
  ExpectOpenFails(StatusCode::kCorruption, "pool state record: checksum mismatch");
}

TEST_F(PoolTest, RegionEntryPointingOutsideThePoolIsCorruption) {
  MakeSamplePool();
  layout::RegionEntry e;
  auto bytes = ReadFile();
  std::memcpy(&e, bytes.data() + layout::kRegionTableOffset, sizeof(e));
  e.offset = kPoolSize * 4;  // well past the end, with a valid checksum
  e.checksum = layout::EntryChecksum(e);
  Poke(layout::kRegionTableOffset, &e, sizeof(e));
  ExpectOpenFails(StatusCode::kCorruption, "outside the data area");
}

TEST_F(PoolTest, CorruptRedoLogRecordIsCorruption) {
  MakeSamplePool();
  auto bytes = ReadFile();
  layout::PoolHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  Poke(h.redo_log_offset, "garbage!", 8);
  ExpectOpenFails(StatusCode::kCorruption, "redo log");
}

TEST_F(PoolTest, TornRedoRecordIsDiscardedAndReported) {
  MakeSamplePool();
  auto bytes = ReadFile();
  layout::PoolHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  const uint64_t magic = layout::kRedoMagic;  // a record whose checksums never landed
  Poke(h.redo_log_offset, &magic, sizeof(magic));
  auto pool = Pool::Open(path_);
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ((*pool)->Info().recovery, RecoveryOutcome::kDiscardedTornRecord);
  EXPECT_EQ((*pool)->ListRegions().size(), 1u);
  EXPECT_TRUE((*pool)->Check().ok());
}

TEST_F(PoolTest, NonPoolFileIsRejectedUntouched) {
  WriteFile(std::vector<char>(kPoolSize, 'z'));
  ExpectOpenFails(StatusCode::kCorruption, "bad magic");
}

TEST(PoolBackends, DramPoolWorksAndIsNotDurable) {
  auto pool = Pool::Create("scratch", kPoolSize, {.backend = BackendKind::kDram});
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ((*pool)->durability(), DurabilityLevel::kNone);
  auto r = (*pool)->CreateRegion("r", 100);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->Persist(0, 100).ok());
  EXPECT_EQ(Pool::Open("scratch", {.backend = BackendKind::kDram}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PoolBackends, EmulatedPmem2OnTmpfsUsesTheCachelinePathButReportsNone) {
  if (!fs::exists("/dev/shm")) GTEST_SKIP() << "no /dev/shm tmpfs on this machine";
  const std::string path = "/dev/shm/cosmos_pool_test_" + std::to_string(getpid()) + ".pool";
  fs::remove(path);
  {
    auto pool = Pool::Create(path, kPoolSize, {.backend = BackendKind::kPmem2Emulated});
    ASSERT_TRUE(pool.ok()) << pool.status();
    EXPECT_EQ((*pool)->durability(), DurabilityLevel::kNone);
    EXPECT_EQ((*pool)->Info().backend, "pmem2-emulated");
    auto r = (*pool)->CreateRegion("r", 8192);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->MemcpyPersist(100, "abc", 3).ok());
    EXPECT_TRUE(r->AtomicStore64(0, 7).ok());
  }
  {
    // The page backend on tmpfs is honest too.
    auto pool = Pool::Open(path, {.backend = BackendKind::kFile});
    ASSERT_TRUE(pool.ok()) << pool.status();
    EXPECT_EQ((*pool)->durability(), DurabilityLevel::kNone);
    EXPECT_EQ((*pool)->Info().durability_at_creation, DurabilityLevel::kNone);
    auto r = (*pool)->OpenRegion("r");
    EXPECT_EQ(std::memcmp(r->data() + 100, "abc", 3), 0);
  }
  fs::remove(path);
}

TEST(PoolBackends, DaxBackendOnANonDaxFileIsFailedPrecondition) {
  char tmpl[] = "/tmp/cosmos_pool_dax_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/p.pool";
  auto pool = Pool::Create(path, kPoolSize, {.backend = BackendKind::kPmem2Dax});
  if (pool.ok()) {
    EXPECT_GE(static_cast<int>((*pool)->durability()),
              static_cast<int>(DurabilityLevel::kCacheline));
  } else {
    EXPECT_EQ(pool.status().code(), StatusCode::kFailedPrecondition) << pool.status();
    EXPECT_FALSE(fs::exists(path));
  }
  fs::remove_all(tmpl);
}

TEST(PoolOnTwin, SyncFailureDuringCreateRegionLeavesThePoolConsistent) {
  auto medium = FaultInjectionMedium::Create(kPoolSize);
  auto pool = Pool::CreateOnMapping(*medium->Map(), "twin");
  ASSERT_TRUE(pool.ok()) << pool.status();
  medium->FailSyncAt(2);  // the redo record's persist
  auto r = (*pool)->CreateRegion("r", 100);
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  // Further metadata changes are refused until the pool is reopened.
  EXPECT_EQ((*pool)->CreateRegion("s", 100).status().code(), StatusCode::kFailedPrecondition);
  pool = Status::Cancelled("close");
  auto reopened = Pool::OpenOnMapping(*medium->Map(), "twin");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE((*reopened)->Check().ok());
  EXPECT_TRUE((*reopened)->CreateRegion("s", 100).ok());
}

}  // namespace
}  // namespace cosmos::pmem
