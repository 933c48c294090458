// FileLogDevice implementation (pwrite + fdatasync + read-only mmap).
#include "kv/log_device_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/file_system.h"

namespace cosmos::kv {

FileLogDevice::FileLogDevice(std::string path, int fd, uint64_t size, const char* map,
                             std::string_view durability)
    : path_(std::move(path)), fd_(fd), size_(size), map_(map), durability_(durability) {}

FileLogDevice::~FileLogDevice() {
  munmap(const_cast<char*>(map_), size_);
  close(fd_);
}

Result<std::unique_ptr<FileLogDevice>> FileLogDevice::Open(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  bool created = false;
  if (fd < 0 && errno == ENOENT) {
    if (size == 0 || size % 4096 != 0) {
      return Status::InvalidArgument("log file " + path +
                                     ": size must be a positive multiple of 4096");
    }
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    created = true;
  }
  if (fd < 0) return Status::FromErrno(errno, "open log file " + path);
  auto fail = [&](int err, const std::string& what) -> Status {
    close(fd);
    if (created) unlink(path.c_str());
    return Status::FromErrno(err, what + " " + path);
  };
  if (created) {
    std::vector<char> zeros(1 << 20, 0);
    for (uint64_t off = 0; off < size;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), size - off));
      ssize_t w = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail(errno, "preallocate log file");
      }
      off += static_cast<uint64_t>(w);
    }
    if (::fsync(fd) != 0) return fail(errno, "fsync new log file");
    // Without this a crash can lose the new file, and with it every write
    // acknowledged before the directory happened to be written back.
    if (Status s = SyncDirectoryOf(path); !s.ok()) {
      close(fd);
      unlink(path.c_str());
      return s;
    }
  } else {
    struct stat st;
    if (fstat(fd, &st) != 0) return fail(errno, "stat log file");
    size = static_cast<uint64_t>(st.st_size);
    if (size == 0 || size % 4096 != 0) {
      close(fd);
      return Status::InvalidArgument("log file " + path + ": size " + std::to_string(size) +
                                     " is not a positive multiple of 4096");
    }
  }
  // An unreadable file-system kind counts as volatile (the level is a promise).
  const Result<bool> volatile_fs = IsVolatileFileSystem(fd);
  const std::string_view durability = (!volatile_fs.ok() || *volatile_fs) ? "none" : "page";
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return fail(errno, "mmap log file");
  return std::unique_ptr<FileLogDevice>(
      new FileLogDevice(path, fd, size, static_cast<const char*>(map), durability));
}

Status FileLogDevice::CheckRange(uint64_t offset, uint64_t len) const {
  if (offset > size_ || len > size_ - offset) {
    return Status::OutOfRange("log file " + path_ + ": range [" + std::to_string(offset) + ", +" +
                              std::to_string(len) + ") beyond size " + std::to_string(size_));
  }
  return Status::Ok();
}

Status FileLogDevice::Read(uint64_t offset, void* out, size_t len) {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  if (len) std::memcpy(out, map_ + offset, len);
  return Status::Ok();
}

Status FileLogDevice::Write(uint64_t offset, const void* data, size_t len) {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t w = ::pwrite(fd_, p, len, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "pwrite log file " + path_);
    }
    p += w;
    offset += static_cast<uint64_t>(w);
    len -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status FileLogDevice::Flush(uint64_t offset, uint64_t len) {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, "fdatasync log file " + path_);
  return Status::Ok();
}

Status FileLogDevice::WriteAfterFlush(uint64_t offset, uint64_t value) {
  if (offset % 8 != 0) return Status::InvalidArgument("log file: misaligned WriteAfterFlush");
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, 8));
  // Earlier Flush calls returned only after fdatasync, so ordering holds.
  COSMOS_RETURN_IF_ERROR(Write(offset, &value, sizeof(value)));
  if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, "fdatasync log file " + path_);
  return Status::Ok();
}

}  // namespace cosmos::kv
