// Pool and Region: the public face of the persistence layer. A pool is one
// file (or DAX file, or memory) holding a header, a region table, a redo log
// and a data area (docs/pool_layout.md); a region is a named, fixed-size
// extent of the data area addressed by offset.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cosmos/result.h"
#include "pmem/durability.h"
#include "pmem/layout.h"
#include "pmem/mapping.h"
#include "pmem/redo_log.h"

namespace cosmos::pmem {

namespace internal {
struct PoolCore;
}  // namespace internal

struct PoolOptions {
  // How a pool file is mapped (Create and Open). kDram is valid for Create
  // only: the pool then lives in anonymous memory and `path` is just a name.
  BackendKind backend = BackendKind::kAuto;
  // Open only: map the file copy-on-write. The medium is never written (a
  // pending redo record is applied in memory only); every data-path and
  // metadata call fails with FailedPrecondition. Works on read-only files.
  bool read_only = false;
  // Create only: capacity of the region table, in [1, layout::kMaxRegionsLimit].
  uint32_t max_regions = layout::kDefaultMaxRegions;
};

struct RegionInfo {
  std::string name;
  uint64_t id = 0;      // unique within the pool, never reused
  uint64_t offset = 0;  // of the region's first byte within the pool
  uint64_t size = 0;
  uint32_t flags = 0;
  uint32_t metadata_length = 0;
  uint64_t created_unix_ns = 0;
};

struct PoolInfo {
  std::string path;  // or the name given to a mapping-backed pool
  std::string uuid;  // canonical 8-4-4-4-12 hex form
  uint32_t format_version = 0;
  uint64_t pool_size = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
  uint64_t used_bytes = 0;  // allocated to regions (block-rounded)
  uint64_t free_bytes = 0;
  uint64_t largest_free_extent = 0;
  uint32_t region_count = 0;
  uint32_t max_regions = 0;
  uint64_t metadata_sequence = 0;
  std::string backend;
  DurabilityLevel durability = DurabilityLevel::kNone;  // of this mapping, now
  DurabilityLevel durability_at_creation = DurabilityLevel::kNone;
  bool read_only = false;
  RecoveryOutcome recovery = RecoveryOutcome::kClean;  // what Open found in the redo log
  uint64_t created_unix_ns = 0;
};

class Region;

// Thread-safety: every method may be called concurrently; metadata changes
// are serialized inside the pool. Errors name the pool and the structure.
class Pool {
 public:
  // Creates a new pool file of `size` bytes (rounded down to 4 KiB) at
  // `path`. The file is built under `<path>.creating` and renamed into place
  // only once complete and durable, so a crash never leaves a half-made pool
  // at `path`. Errors: AlreadyExists (path exists), InvalidArgument (size or
  // max_regions), ResourceExhausted (no space), PermissionDenied, IoError,
  // FailedPrecondition (kPmem2Dax on a non-DAX file system).
  static Result<std::unique_ptr<Pool>> Create(const std::string& path, uint64_t size,
                                              const PoolOptions& options = {});

  // Opens an existing pool, replaying or discarding its redo log. Errors:
  // NotFound; PermissionDenied (read-only file opened read-write, or another
  // process holds it: Unavailable); Corruption (truncated file, bad magic,
  // header/state/table checksum, entry outside the pool, overlapping
  // regions, malformed redo record); FailedPrecondition (unsupported format
  // version, kPmem2Dax on non-DAX); IoError. Never modifies a pool it
  // rejects.
  static Result<std::unique_ptr<Pool>> Open(const std::string& path,
                                            const PoolOptions& options = {});

  // As Create/Open, on a caller-supplied mapping (the fault-injection twin,
  // DRAM). `name` names the pool in messages. CreateOnMapping formats the
  // whole mapping; OpenOnMapping with `read_only` requires a private view.
  static Result<std::unique_ptr<Pool>> CreateOnMapping(
      std::unique_ptr<Mapping> mapping, std::string name,
      uint32_t max_regions = layout::kDefaultMaxRegions);
  static Result<std::unique_ptr<Pool>> OpenOnMapping(std::unique_ptr<Mapping> mapping,
                                                     std::string name, bool read_only = false);

  // Closes the pool (Close() errors are dropped; call Close() to see them).
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Releases the pool. Metadata is always durable already; data written but
  // not persisted by the caller is not made durable here. Errors:
  // FailedPrecondition while Region handles are open (the pool stays open).
  // Idempotent.
  Status Close();

  // Creates a region of `size` bytes (> 0), zero-filled and durable before
  // it becomes visible. `name`: 1..63 bytes of [A-Za-z0-9._:-]. `flags` are
  // stored for upper layers. Crash-atomic. Errors: InvalidArgument (name,
  // size 0), AlreadyExists (duplicate name), ResourceExhausted (region table
  // full, or no free extent large enough), FailedPrecondition (read-only or
  // closed pool), IoError.
  Result<Region> CreateRegion(std::string_view name, uint64_t size, uint32_t flags = 0);

  // Opens a handle to an existing region. Any number of handles may be open.
  // Errors: NotFound, FailedPrecondition (closed pool).
  Result<Region> OpenRegion(std::string_view name);

  // All regions, ordered by offset.
  std::vector<RegionInfo> ListRegions() const;

  // Deletes a region; its extent becomes free (and is zeroed before reuse).
  // Crash-atomic. Errors: NotFound, FailedPrecondition (handles open,
  // read-only or closed pool), IoError.
  Status DeleteRegion(std::string_view name);

  PoolInfo Info() const;
  DurabilityLevel durability() const;

  // Re-validates every on-media structure in the current view (header,
  // state, region table, allocation, empty redo log). Ok or the first
  // Corruption found.
  Status Check() const;

 private:
  explicit Pool(std::shared_ptr<internal::PoolCore> core) : core_(std::move(core)) {}
  static Result<std::unique_ptr<Pool>> OpenMapped(std::unique_ptr<Mapping> mapping,
                                                  std::string name, bool read_only);

  std::shared_ptr<internal::PoolCore> core_;
};

// A handle to one region: direct loads and stores through data(), and the
// persistence calls below. Move-only. Keeps the pool's mapping alive; the
// pool cannot be closed (and the region not deleted) while handles exist.
// Thread-safety: Flush, Drain, Persist, MemcpyPersist, AtomicStore64 and
// the accessors may be called concurrently from any number of threads on the
// same handle. Offsets are relative to the region; every range is checked:
// OutOfRange when offset + len exceeds size() (or overflows).
class Region {
 public:
  Region(Region&& other) noexcept;
  Region& operator=(Region&& other) noexcept;
  ~Region();

  // First byte of the region; valid for size() bytes while the handle lives.
  // Stores through it are visible at once but durable only after Persist
  // (or Flush + Drain) covering them. On a read-only pool: do not store.
  std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }
  uint64_t id() const { return id_; }
  uint32_t flags() const { return flags_; }
  DurabilityLevel durability() const;

  // Starts write-back of [offset, offset+len); no completion, no ordering.
  Status Flush(uint64_t offset, uint64_t len) const;
  // Waits until every range flushed before the call is durable. On a `page`
  // pool, concurrent Drain/Persist calls share one msync (group commit).
  Status Drain() const;
  // Flush + Drain of one range: durable at durability() on success.
  // Errors (Flush, Drain, Persist, MemcpyPersist, AtomicStore64): OutOfRange,
  // FailedPrecondition (read-only pool), IoError. On a `page` pool a failed
  // msync is sticky: every later call fails too (the kernel may have dropped
  // the dirty pages), so the caller must treat unpersisted data as lost and
  // reopen the pool.
  Status Persist(uint64_t offset, uint64_t len) const;
  // Copies `len` bytes from `src` and persists them.
  Status MemcpyPersist(uint64_t offset, const void* src, uint64_t len) const;
  // Atomically stores `value` at `offset` (8-byte aligned, else
  // InvalidArgument) and persists it: readers and a crash see the old or
  // the new value, never a mix.
  Status AtomicStore64(uint64_t offset, uint64_t value) const;

  // The region's metadata slot (at most layout::kMetadataSlotSize bytes,
  // initially empty), reserved for the security layer.
  Result<std::vector<std::byte>> ReadMetadata() const;
  // Replaces the slot contents, crash-atomically (redo log). Errors:
  // InvalidArgument (more than kMetadataSlotSize bytes), FailedPrecondition
  // (read-only pool), IoError.
  Status WriteMetadata(std::span<const std::byte> bytes) const;

 private:
  friend class Pool;
  Region(std::shared_ptr<internal::PoolCore> core, uint32_t index, const RegionInfo& info);
  Status CheckRange(uint64_t offset, uint64_t len) const;
  Status CheckWritable() const;
  void Release();

  std::shared_ptr<internal::PoolCore> core_;
  Mapping* mapping_ = nullptr;  // core_->mapping, cached for the data path
  bool read_only_ = false;
  uint32_t index_ = 0;  // region table slot
  uint64_t id_ = 0;
  uint64_t pool_offset_ = 0;
  uint64_t size_ = 0;
  uint32_t flags_ = 0;
  std::byte* data_ = nullptr;
  std::string name_;
};

}  // namespace cosmos::pmem
