// The power-cut file system's guarantees, through a real FUSE mount: after a
// cut and a remount, exactly what was synced is there (file data on fsync,
// names on a directory fsync, mmap'ed pages on msync(MS_SYNC)).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "powercut_mount.h"

namespace cosmos::powercut {
namespace {

namespace fs = std::filesystem;

class PowercutFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = FuseUnavailableReason(); !why.empty()) GTEST_SKIP() << why;
    dir_ = fs::temp_directory_path() /
           ("cosmos_powercut_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Remount();
  }
  void TearDown() override {
    mount_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path backing() const { return dir_ / "backing"; }
  fs::path at(const std::string& name) const { return dir_ / "mnt" / name; }

  // Cuts the power (unless `cut` is false), unmounts and mounts again over
  // the same backing directory: the "reboot".
  void Remount(bool cut = true) {
    if (mount_ != nullptr) {
      if (cut) {
        ASSERT_TRUE(mount_->Cut());
      }
      ASSERT_TRUE(mount_->Unmount());
    }
    mount_ = std::make_unique<PowercutMount>(backing(), dir_ / "mnt");
    std::string error;
    ASSERT_TRUE(mount_->Mount(&error)) << error;
  }

  static void WriteFile(const fs::path& p, const std::string& data, bool sync) {
    const int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << p << ": " << std::strerror(errno);
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    if (sync) {
      ASSERT_EQ(fsync(fd), 0) << std::strerror(errno);
    }
    close(fd);
  }
  static void SyncDir(const fs::path& dir) {
    const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fsync(fd), 0) << std::strerror(errno);
    close(fd);
  }
  static std::string ReadFile(const fs::path& p) {
    const int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "<absent>";
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
  }
  // A file whose name and contents are durable.
  void DurableFile(const std::string& name, const std::string& data) {
    WriteFile(at(name), data, true);
    SyncDir(at(""));
  }

  fs::path dir_;
  std::unique_ptr<PowercutMount> mount_;
};

TEST_F(PowercutFsTest, UnsyncedWriteIsReadableUntilTheCutAndGoneAfterIt) {
  DurableFile("f", "old");
  WriteFile(at("f"), "new", false);
  EXPECT_EQ(ReadFile(at("f")), "new");
  EXPECT_EQ(ReadFile(backing() / "f"), "old");  // the backing file holds only synced bytes
  EXPECT_GT(mount_->Stat("pending_bytes"), 0);
  Remount();
  EXPECT_EQ(ReadFile(at("f")), "old");
}

TEST_F(PowercutFsTest, UnmountWithoutCutDropsUnsyncedWritesToo) {
  DurableFile("f", "old");
  WriteFile(at("f"), "new", false);
  Remount(/*cut=*/false);
  EXPECT_EQ(ReadFile(at("f")), "old");
}

TEST_F(PowercutFsTest, FsyncedWriteSurvivesTheCut) {
  DurableFile("f", "old");
  WriteFile(at("f"), "new", true);
  EXPECT_EQ(ReadFile(backing() / "f"), "new");
  Remount();
  EXPECT_EQ(ReadFile(at("f")), "new");
}

TEST_F(PowercutFsTest, FdatasyncedWriteSurvivesTheCut) {
  DurableFile("f", std::string(10000, 'a'));
  const int fd = open(at("f").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "bbbb", 4, 5000), 4);
  ASSERT_EQ(fdatasync(fd), 0);
  ASSERT_EQ(pwrite(fd, "cccc", 4, 9000), 4);  // after the sync: lost
  close(fd);
  Remount();
  std::string want(10000, 'a');
  want.replace(5000, 4, "bbbb");
  EXPECT_TRUE(ReadFile(at("f")) == want);
}

TEST_F(PowercutFsTest, NewFileWithoutDirectoryFsyncIsGone) {
  WriteFile(at("f"), "data", true);  // data synced, name not
  EXPECT_FALSE(fs::exists(backing() / "f"));
  Remount();
  EXPECT_FALSE(fs::exists(at("f")));
}

TEST_F(PowercutFsTest, NewFileWithDirectoryFsyncSurvivesWithItsSyncedData) {
  WriteFile(at("f"), "data", false);
  SyncDir(at(""));  // the name is durable, the data is not
  Remount();
  ASSERT_TRUE(fs::exists(at("f")));
  EXPECT_EQ(ReadFile(at("f")), "");
}

TEST_F(PowercutFsTest, FileInNewDirectoryNeedsBothDirectoriesSynced) {
  ASSERT_TRUE(fs::create_directory(at("d")));
  WriteFile(at("d/f"), "data", true);
  SyncDir(at("d"));  // commits mkdir d too: changes commit in order
  Remount();
  EXPECT_EQ(ReadFile(at("d/f")), "data");
  ASSERT_TRUE(fs::create_directory(at("e")));
  Remount();
  EXPECT_FALSE(fs::exists(at("e")));
}

TEST_F(PowercutFsTest, RenameAndUnlinkNeedDirectoryFsync) {
  DurableFile("a", "A");
  DurableFile("gone", "G");
  fs::rename(at("a"), at("b"));
  fs::remove(at("gone"));
  EXPECT_TRUE(fs::exists(at("b")));
  Remount();
  EXPECT_EQ(ReadFile(at("a")), "A");
  EXPECT_FALSE(fs::exists(at("b")));
  EXPECT_EQ(ReadFile(at("gone")), "G");
  fs::rename(at("a"), at("b"));
  fs::remove(at("gone"));
  SyncDir(at(""));
  Remount();
  EXPECT_FALSE(fs::exists(at("a")));
  EXPECT_EQ(ReadFile(at("b")), "A");
  EXPECT_FALSE(fs::exists(at("gone")));
}

TEST_F(PowercutFsTest, RenameOverAnExistingFileIsAtomic) {
  DurableFile("target", "old");
  WriteFile(at("tmp"), "new", true);
  fs::rename(at("tmp"), at("target"));
  Remount();  // the rename was not committed: the old file is whole
  EXPECT_EQ(ReadFile(at("target")), "old");
  WriteFile(at("tmp"), "new", true);
  fs::rename(at("tmp"), at("target"));
  SyncDir(at(""));
  Remount();
  EXPECT_EQ(ReadFile(at("target")), "new");
  EXPECT_FALSE(fs::exists(at("tmp")));
}

TEST_F(PowercutFsTest, TruncateAndFallocateNeedFsync) {
  DurableFile("f", std::string(8192, 'x'));
  const int fd = open(at("f").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 100), 0);
  ASSERT_EQ(ftruncate(fd, 6000), 0);  // the bytes past 100 now read as zero
  std::string tail(100, '?');
  ASSERT_EQ(pread(fd, tail.data(), 100, 5000), 100);
  EXPECT_EQ(tail, std::string(100, '\0'));
  close(fd);
  Remount();
  EXPECT_TRUE(ReadFile(at("f")) == std::string(8192, 'x'));

  const int fd2 = open(at("f").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd2, 0);
  ASSERT_EQ(ftruncate(fd2, 100), 0);
  ASSERT_EQ(posix_fallocate(fd2, 0, 1 << 20), 0);
  ASSERT_EQ(fsync(fd2), 0);
  close(fd2);
  Remount();
  const std::string after = ReadFile(at("f"));
  ASSERT_EQ(after.size(), 1u << 20);
  EXPECT_TRUE(after.substr(0, 100) == std::string(100, 'x'));
  EXPECT_TRUE(after.substr(100) == std::string((1 << 20) - 100, '\0'));
}

// Shared writable mmap goes through the page cache: msync(MS_SYNC) writes
// the range back (FUSE write requests, held as pending) and then fsyncs.
TEST_F(PowercutFsTest, MsyncedMmapPagesSurviveTheCut) {
  constexpr size_t kSize = 4 * 4096;
  DurableFile("m", std::string(kSize, '\0'));
  const int fd = open(at("m").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << std::strerror(errno);
  char* m = static_cast<char*>(p);
  std::memset(m, 'A', 4096);
  std::memset(m + 2 * 4096, 'C', 4096);
  ASSERT_EQ(msync(m, 4096, MS_SYNC), 0) << std::strerror(errno);
  EXPECT_GE(mount_->Stat("synced_bytes"), 4096);
  munmap(p, kSize);
  close(fd);
  Remount();
  const std::string after = ReadFile(at("m"));
  ASSERT_EQ(after.size(), kSize);
  EXPECT_TRUE(after.substr(0, 4096) == std::string(4096, 'A'));
  // Page 2 was never synced. The kernel may have written it back (a pending
  // write request) before the fsync of page 0, which then made it durable
  // too; either way it is whole: old or new.
  const std::string page2 = after.substr(2 * 4096, 4096);
  EXPECT_TRUE(page2 == std::string(4096, '\0') || page2 == std::string(4096, 'C'));
}

TEST_F(PowercutFsTest, UnsyncedMmapWritesAreGoneAfterTheCut) {
  constexpr size_t kSize = 2 * 4096;
  DurableFile("m", std::string(kSize, 'o'));
  const int fd = open(at("m").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 'N', kSize);
  munmap(p, kSize);  // dirty pages may be written back: pending, never synced
  close(fd);
  Remount();
  EXPECT_TRUE(ReadFile(at("m")) == std::string(kSize, 'o'));
}

TEST_F(PowercutFsTest, EveryOperationFailsAfterTheCut) {
  DurableFile("f", "old");
  const int fd = open(at("f").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(mount_->Cut());
  EXPECT_EQ(mount_->Stat("state"), 1);
  EXPECT_EQ(pwrite(fd, "x", 1, 0), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(fsync(fd), -1);
  EXPECT_EQ(errno, EIO);
  close(fd);
  EXPECT_EQ(open(at("g").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), -1);
  Remount(/*cut=*/false);
  EXPECT_EQ(ReadFile(at("f")), "old");
}

TEST_F(PowercutFsTest, CutAtSyncReplacesTheArmedSyncByTheCut) {
  DurableFile("f", "old");
  ASSERT_TRUE(mount_->CutAtSync(2));
  const int fd = open(at("f").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "one", 3, 0), 3);
  ASSERT_EQ(fsync(fd), 0);  // sync 1 happens
  ASSERT_EQ(pwrite(fd, "two", 3, 0), 3);
  EXPECT_EQ(fsync(fd), -1);  // sync 2 is the cut
  EXPECT_EQ(errno, EIO);
  close(fd);
  EXPECT_EQ(mount_->Stat("state"), 1);
  Remount(/*cut=*/false);
  EXPECT_EQ(ReadFile(at("f")), "one");
}

}  // namespace
}  // namespace cosmos::powercut
