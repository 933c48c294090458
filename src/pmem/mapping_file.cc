// Page backend: a regular file mapped with mmap, made durable with our own
// msync(MS_SYNC). libpmem2 is not used here on purpose: its page-granularity
// persist path aborts the process when msync fails, and a storage service
// must instead report the error to the caller (DESIGN.md section 3).
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/check.h"
#include "common/file_system.h"
#include "pmem/group_commit.h"
#include "pmem/mapping.h"

namespace cosmos::pmem {
namespace {

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

class FileMapping final : public Mapping {
 public:
  FileMapping(std::byte* base, size_t size, bool writable, int fd, std::string path,
              DurabilityLevel durability)
      : Mapping(base, size, writable),
        fd_(fd),
        path_(std::move(path)),
        durability_(durability),
        committer_([this](size_t begin, size_t end) { return SyncRange(begin, end); }) {}

  ~FileMapping() override {
    munmap(base(), size());
    close(fd_);
  }

  DurabilityLevel durability() const override { return durability_; }
  std::string_view backend_name() const override { return writable() ? "file" : "file-readonly"; }

  // msync(MS_ASYNC) is a no-op on Linux, so "starting write-back" is only
  // bookkeeping: the range joins the next group sync.
  Status Flush(size_t offset, size_t len) override {
    CheckRange(offset, len);
    if (!writable()) return ReadOnlyError();
    committer_.AddRange(offset, len);
    return Status::Ok();
  }

  Status Drain() override {
    if (!writable()) return ReadOnlyError();
    return committer_.Sync();
  }

  Status Persist(size_t offset, size_t len) override {
    CheckRange(offset, len);
    if (!writable()) return ReadOnlyError();
    committer_.AddRange(offset, len);
    return committer_.Sync();
  }

 private:
  Status ReadOnlyError() const {
    return Status::FailedPrecondition("pool " + path_ + ": mapping is read-only");
  }

  // Called by the group-commit leader only.
  Status SyncRange(size_t begin, size_t end) {
    const size_t page = PageSize();
    const size_t aligned = begin & ~(page - 1);
    if (msync(base() + aligned, end - aligned, MS_SYNC) != 0) {
      const int err = errno;
      return Status::FromErrno(err, "pool " + path_ + ": msync of bytes [" + std::to_string(begin) +
                                        ", " + std::to_string(end) +
                                        ") failed; data written since the last successful "
                                        "sync may be lost");
    }
    return Status::Ok();
  }

  int fd_;
  std::string path_;
  DurabilityLevel durability_;
  GroupCommitter committer_;
};

}  // namespace

Result<std::unique_ptr<Mapping>> MapFile(int fd, size_t size, bool writable, std::string path) {
  COSMOS_CHECK(size > 0);
  const int prot = PROT_READ | PROT_WRITE;  // private views stay writable for in-memory recovery
  const int flags = writable ? MAP_SHARED : MAP_PRIVATE;
  void* p = mmap(nullptr, size, prot, flags, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return Status::FromErrno(
        err, "pool " + path + ": mmap of " + std::to_string(size) + " bytes failed");
  }
  // A file system whose kind cannot be read is treated as volatile: the
  // level is a promise, so it errs towards "none".
  const Result<bool> volatile_fs = IsVolatileFileSystem(fd);
  const DurabilityLevel level = (!writable || !volatile_fs.ok() || *volatile_fs)
                                    ? DurabilityLevel::kNone
                                    : DurabilityLevel::kPage;
  return std::unique_ptr<Mapping>(
      new FileMapping(static_cast<std::byte*>(p), size, writable, fd, std::move(path), level));
}

}  // namespace cosmos::pmem
