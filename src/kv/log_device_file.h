// FileLogDevice: a LogDevice on a regular local file, durability "page"
// (pwrite into the page cache, fdatasync to persist, reads from a shared
// read-only mapping), or "none" when the file lives on tmpfs/ramfs. TEMPORARY embedded backend
// until the pmem pool layer provides an embedded pool region; it is not a persistent-memory path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cosmos/result.h"
#include "kv/log_device.h"

namespace cosmos::kv {

// Thread-safety: concurrent calls are safe (pwrite/fdatasync are thread-safe,
// the mapping is read-only); callers keep ranges disjoint as documented in
// LogDevice.
class FileLogDevice final : public LogDevice {
 public:
  // Opens `path`, creating it with `size` bytes if missing. A new file is
  // filled with zeros (blocks allocated up front, so later fdatasync calls
  // need no metadata journal commit), fsynced, and its directory fsynced so
  // the file itself survives a crash. An existing file keeps its size;
  // `size` is ignored then. Errors: IoError (open, write, fsync of the file
  // or its directory, mmap; a new file is removed again), InvalidArgument
  // (size 0 or not a multiple of 4096 for a new file).
  static Result<std::unique_ptr<FileLogDevice>> Open(const std::string& path, uint64_t size);
  ~FileLogDevice() override;

  uint64_t Size() const override { return size_; }
  // "page", or "none" on a volatile file system (tmpfs, ramfs).
  std::string_view DurabilityLevel() const override { return durability_; }
  std::string_view BackendName() const override {
    return "local-file (temporary embedded backend: pwrite + fdatasync)";
  }

  Status Read(uint64_t offset, void* out, size_t len) override;
  Status Write(uint64_t offset, const void* data, size_t len) override;
  // fdatasync of the file (the page cache cannot sync a byte range durably
  // with the metadata it needs, so the whole file's dirty data is synced).
  Status Flush(uint64_t offset, uint64_t len) override;
  Status WriteAfterFlush(uint64_t offset, uint64_t value) override;

 private:
  FileLogDevice(std::string path, int fd, uint64_t size, const char* map,
                std::string_view durability);
  Status CheckRange(uint64_t offset, uint64_t len) const;

  const std::string path_;
  const int fd_;
  const uint64_t size_;
  const char* const map_;
  const std::string_view durability_;  // a string literal
};

}  // namespace cosmos::kv
