// libpmem2 backend: DAX-mapped persistent memory with user-space cache-line
// flushes (or none at all on eADR platforms), and an emulation mode that
// forces the same cache-line code path on an ordinary file.
#include <libpmem2.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/check.h"
#include "pmem/mapping.h"

namespace cosmos::pmem {
namespace {

std::string Pmem2Error() {
  const char* msg = pmem2_errormsg();
  return msg != nullptr && *msg != '\0' ? msg : "unknown libpmem2 error";
}

class Pmem2Mapping final : public Mapping {
 public:
  // `own_mmap`: the emulation path maps the file itself and must unmap it.
  Pmem2Mapping(pmem2_map* map, pmem2_source* source, int fd, bool own_mmap, bool emulated)
      : Mapping(static_cast<std::byte*>(pmem2_map_get_address(map)), pmem2_map_get_size(map), true),
        map_(map),
        source_(source),
        fd_(fd),
        own_mmap_(own_mmap),
        emulated_(emulated),
        persist_(pmem2_get_persist_fn(map)),
        flush_(pmem2_get_flush_fn(map)),
        drain_(pmem2_get_drain_fn(map)),
        memcpy_(pmem2_get_memcpy_fn(map)) {
    const auto granularity = pmem2_map_get_store_granularity(map);
    durability_ = emulated                                      ? DurabilityLevel::kNone
                  : granularity == PMEM2_GRANULARITY_BYTE       ? DurabilityLevel::kByte
                  : granularity == PMEM2_GRANULARITY_CACHE_LINE ? DurabilityLevel::kCacheline
                                                                : DurabilityLevel::kPage;
  }

  ~Pmem2Mapping() override {
    std::byte* addr = base();
    const size_t len = size();
    pmem2_map_delete(&map_);  // for a map_from_existing mapping this does not munmap
    if (own_mmap_) munmap(addr, len);
    pmem2_source_delete(&source_);
    close(fd_);
  }

  DurabilityLevel durability() const override { return durability_; }
  std::string_view backend_name() const override { return emulated_ ? "pmem2-emulated" : "pmem2"; }

  // libpmem2's flush/drain cannot fail: they are CPU instructions.
  Status Flush(size_t offset, size_t len) override {
    CheckRange(offset, len);
    flush_(base() + offset, len);
    return Status::Ok();
  }
  Status Drain() override {
    drain_();
    return Status::Ok();
  }
  Status Persist(size_t offset, size_t len) override {
    CheckRange(offset, len);
    persist_(base() + offset, len);
    return Status::Ok();
  }
  Status MemcpyPersist(size_t offset, const void* src, size_t len) override {
    CheckRange(offset, len);
    memcpy_(base() + offset, src, len, 0);  // flags 0: copy, flush and drain
    return Status::Ok();
  }

 private:
  pmem2_map* map_;
  pmem2_source* source_;
  int fd_;
  bool own_mmap_;
  bool emulated_;
  DurabilityLevel durability_ = DurabilityLevel::kNone;
  pmem2_persist_fn persist_;
  pmem2_flush_fn flush_;
  pmem2_drain_fn drain_;
  pmem2_memcpy_fn memcpy_;
};

}  // namespace

Result<std::unique_ptr<Mapping>> MapPmem2(int fd, size_t size, bool emulate, std::string path) {
  pmem2_source* source = nullptr;
  if (pmem2_source_from_fd(&source, fd) != 0) {
    const std::string msg = Pmem2Error();
    close(fd);
    return Status::IoError("pool " + path + ": libpmem2 cannot use the file: " + msg);
  }
  pmem2_map* map = nullptr;
  if (emulate) {
    // Map the file ourselves and hand libpmem2 the mapping with a forced
    // cache-line granularity, so flushes are CLWB/CLFLUSHOPT + SFENCE exactly
    // as on real persistent memory (but land in the page cache: not durable).
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      pmem2_source_delete(&source);
      close(fd);
      return Status::FromErrno(err, "pool " + path + ": mmap failed");
    }
    if (pmem2_map_from_existing(&map, source, p, size, PMEM2_GRANULARITY_CACHE_LINE) != 0) {
      const std::string msg = Pmem2Error();
      munmap(p, size);
      pmem2_source_delete(&source);
      close(fd);
      return Status::IoError("pool " + path + ": libpmem2 emulation mapping failed: " + msg);
    }
    return std::unique_ptr<Mapping>(new Pmem2Mapping(map, source, fd, true, true));
  }

  pmem2_config* config = nullptr;
  if (pmem2_config_new(&config) != 0) {
    pmem2_source_delete(&source);
    close(fd);
    return Status::ResourceExhausted("pool " + path + ": libpmem2 config: " + Pmem2Error());
  }
  // Requiring cache-line granularity refuses page-cache mappings: libpmem2
  // then reports PMEM2_E_GRANULARITY_NOT_SUPPORTED instead of falling back
  // to msync (which it would abort on when msync fails).
  int rc = pmem2_config_set_required_store_granularity(config, PMEM2_GRANULARITY_CACHE_LINE);
  if (rc == 0) rc = pmem2_config_set_length(config, size);
  if (rc == 0) rc = pmem2_map_new(&map, config, source);
  pmem2_config_delete(&config);
  if (rc != 0) {
    const std::string msg = Pmem2Error();
    pmem2_source_delete(&source);
    close(fd);
    if (rc == PMEM2_E_GRANULARITY_NOT_SUPPORTED) {
      return Status::FailedPrecondition("pool " + path +
                                        ": not on DAX persistent memory (libpmem2: " + msg + ")");
    }
    return Status::IoError("pool " + path + ": libpmem2 mapping failed: " + msg);
  }
  return std::unique_ptr<Mapping>(new Pmem2Mapping(map, source, fd, false, false));
}

}  // namespace cosmos::pmem
