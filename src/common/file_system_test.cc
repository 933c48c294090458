// Volatile file-system detection and directory fsync.
#include "common/file_system.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/testing/unprivileged.h"

namespace cosmos {
namespace {

Result<bool> IsVolatileDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, dir);
  Result<bool> r = IsVolatileFileSystem(fd);
  close(fd);
  return r;
}

TEST(FileSystem, TmpfsIsVolatile) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm tmpfs here";
  auto v = IsVolatileDirectory("/dev/shm");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(*v);
}

TEST(FileSystem, ProcIsNotMistakenForTmpfs) {
  auto v = IsVolatileDirectory("/proc");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(*v);
}

TEST(FileSystem, BadDescriptorIsAnError) { EXPECT_FALSE(IsVolatileFileSystem(-1).ok()); }

TEST(FileSystem, SyncDirectoryOfAFileAndOfABareName) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("cosmos_fs_test_" + std::to_string(getpid()));
  std::filesystem::create_directory(dir);
  EXPECT_TRUE(SyncDirectoryOf(dir + "/new_file").ok());
  EXPECT_TRUE(SyncDirectoryOf("bare_name").ok());  // the current directory
  EXPECT_FALSE(SyncDirectoryOf(dir + "/missing/new_file").ok());
  std::filesystem::remove_all(dir);
}

TEST(FileSystem, SyncDirectoryOfFailsWhenTheDirectoryCannotBeOpened) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("cosmos_fs_unreadable_" + std::to_string(getpid()));
  std::filesystem::create_directory(dir);
  const int rc = testing::RunAsOwnerOf(dir, [&] {
    if (chmod(dir.c_str(), testing::kWriteOnlyDirectory) != 0) return 10;
    return SyncDirectoryOf(dir + "/file").ok() ? 1 : 0;
  });
  std::filesystem::remove_all(dir);
  EXPECT_EQ(rc, 0);
}

}  // namespace
}  // namespace cosmos
