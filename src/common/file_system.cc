// Volatile file-system detection (statfs magic numbers) and directory fsync.
#include "common/file_system.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace cosmos {

Result<bool> IsVolatileFileSystem(int fd) {
  struct statfs fs {};
  if (fstatfs(fd, &fs) != 0) return Status::FromErrno(errno, "fstatfs");
  return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

Status SyncDirectoryOf(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Status::FromErrno(errno, "open directory " + dir.string() + " to sync it");
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return Status::FromErrno(err, "fsync directory " + dir.string());
  return Status::Ok();
}

}  // namespace cosmos
