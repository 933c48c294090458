// Mapping: a contiguous byte range of a pool medium mapped into memory, with
// the persistence primitives of the SNIA NVM programming model. One leaf
// file per backend (mapping_file.cc, mapping_pmem2.cc, mapping_dram.cc,
// fault_injection.cc); this header names no backend library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cosmos/result.h"
#include "pmem/durability.h"

namespace cosmos::pmem {

// Which backend maps a pool file.
enum class BackendKind {
  kAuto,           // libpmem2 on DAX (cacheline/byte), else mmap+msync (page)
  kFile,           // mmap + msync/fdatasync; `page`, or `none` on tmpfs/ramfs
  kPmem2Dax,       // libpmem2 on a DAX mapping; FailedPrecondition if not DAX
  kPmem2Emulated,  // libpmem2 cache-line flush path forced on any file; `none`
  kDram,           // anonymous memory, nothing is durable; `none`
};

// "auto", "file", "pmem2", "pmem2-emulated", "dram".
std::string_view BackendName(BackendKind kind);
// Inverse of BackendName; InvalidArgument for an unknown name.
Result<BackendKind> BackendFromName(std::string_view name);

// Offsets are relative to base(). Callers (Pool, Region) bounds-check every
// range; a Mapping only COSMOS_CHECKs it.
// Thread-safety: Flush, Drain, Persist and MemcpyPersist may be called
// concurrently from any number of threads (on overlapping ranges too; the
// bytes of concurrently written overlapping ranges are then unspecified).
class Mapping {
 public:
  virtual ~Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  std::byte* base() const { return base_; }
  size_t size() const { return size_; }
  // False for read-only mappings (copy-on-write views that never reach the
  // medium); their persistence calls return FailedPrecondition.
  bool writable() const { return writable_; }

  // What a successful Persist guarantees; never stronger than the medium.
  virtual DurabilityLevel durability() const = 0;
  // Short backend name for info output: "file", "pmem2", "pmem2-emulated", ...
  virtual std::string_view backend_name() const = 0;

  // Starts write-back of [offset, offset+len); no ordering, no completion.
  // Errors: IoError, or the sticky error of an earlier failed sync.
  virtual Status Flush(size_t offset, size_t len) = 0;
  // Returns once every range flushed before the call (by any thread) is
  // durable at durability(). Errors: IoError (the medium's message).
  virtual Status Drain() = 0;
  // Flush(offset, len) + Drain(), possibly cheaper.
  virtual Status Persist(size_t offset, size_t len) = 0;
  // Copies `len` bytes from `src` to base()+offset and persists them.
  // REQUIRES: src does not overlap the destination.
  virtual Status MemcpyPersist(size_t offset, const void* src, size_t len);

 protected:
  Mapping(std::byte* base, size_t size, bool writable)
      : base_(base), size_(size), writable_(writable) {}
  // COSMOS_CHECKs that [offset, offset+len) lies inside the mapping.
  void CheckRange(size_t offset, size_t len) const;

 private:
  std::byte* base_;
  size_t size_;
  bool writable_;
};

// Maps a regular file (or block/DAX file) `fd` of `size` bytes with mmap.
// Writable: MAP_SHARED, durability through msync with group commit: any
// number of concurrent Persist/Drain calls share one msync. Durability is
// `page`, or `none` when the file lives on tmpfs/ramfs. Not writable:
// MAP_PRIVATE copy-on-write view (in-memory recovery never reaches the file).
// Takes ownership of `fd` (closed with the mapping, also on error).
// `path` only names the file in messages. Errors: IoError.
Result<std::unique_ptr<Mapping>> MapFile(int fd, size_t size, bool writable, std::string path);

// Maps `fd` with libpmem2. emulate == false: requires a DAX mapping with
// cache-line or byte store granularity, else FailedPrecondition (the file is
// not on DAX persistent memory). emulate == true: maps any file and forces
// the cache-line flush path (CLWB/CLFLUSHOPT + SFENCE); durability `none`,
// because the page cache is not persistent memory. Takes ownership of `fd`.
Result<std::unique_ptr<Mapping>> MapPmem2(int fd, size_t size, bool emulate, std::string path);

// Anonymous private memory of `size` bytes, zero-filled; durability `none`.
// Errors: ResourceExhausted when mmap fails.
Result<std::unique_ptr<Mapping>> MapDram(size_t size);

}  // namespace cosmos::pmem
