// RegionTable: the node's view of every served pool and its regions, shared
// by all worker threads. Admin calls (create/open/list/delete) serialize on a
// reader-writer lock; the data path resolves a handle with two atomic loads
// and pins the region with a use count, taking no lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cosmos/client.h"
#include "cosmos/result.h"
#include "pmem/pool.h"
#include "protocol/rpm_protocol.h"

namespace cosmos::server {

// Region flag bits stored in the pool's region table (pmem RegionInfo.flags).
inline constexpr uint32_t kRegionFlagSecure = 1;

// Where a protected-region engine (the security layer) plugs in: when a
// region is secure, every data-path access goes through this interface
// instead of touching the mapping directly. The plain node has none and
// refuses secure regions.
class SecureRegionEngine {
 public:
  virtual ~SecureRegionEngine() = default;
  virtual Status Write(uint64_t handle, uint64_t offset, std::span<const std::byte> data) = 0;
  virtual Status Read(uint64_t handle, uint64_t offset, std::span<std::byte> out) = 0;
  virtual Status Flush(uint64_t handle) = 0;
  virtual Result<uint64_t> Digest(uint64_t handle, std::span<const protocol::Range> ranges) = 0;
};

// One served region. Lives until the table is destroyed (entries are never
// freed while workers may hold a pointer); `deleted` retires it.
struct RegionEntry {
  RegionEntry(pmem::Region r, std::string pool_name_in, uint64_t handle_in)
      : region(std::move(r)), pool_name(std::move(pool_name_in)), handle(handle_in) {}
  pmem::Region region;
  std::string pool_name;
  uint64_t handle;
  std::atomic<int64_t> users{0};
  std::atomic<bool> deleted{false};

  Durability durability() const { return static_cast<Durability>(region.durability()); }
  bool secure() const { return (region.flags() & kRegionFlagSecure) != 0; }
};

// Pins a RegionEntry for the duration of one op (the data-path "lock").
class RegionRef {
 public:
  RegionRef() = default;
  explicit RegionRef(RegionEntry* e) : e_(e) {}
  RegionRef(RegionRef&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  RegionRef& operator=(RegionRef&& o) noexcept {
    Release();
    e_ = o.e_;
    o.e_ = nullptr;
    return *this;
  }
  ~RegionRef() { Release(); }
  RegionEntry* operator->() const { return e_; }
  RegionEntry* get() const { return e_; }
  explicit operator bool() const { return e_ != nullptr; }

 private:
  void Release() {
    if (e_ != nullptr) e_->users.fetch_sub(1, std::memory_order_release);
    e_ = nullptr;
  }
  RegionEntry* e_ = nullptr;
};

struct ServedPool {
  std::string name;
  std::unique_ptr<pmem::Pool> pool;
};

// Thread-safety: every method may be called concurrently.
class RegionTable {
 public:
  static constexpr size_t kMaxHandles = 1 << 16;

  // Serves `pools` (the first is the default pool). REQUIRES: non-empty,
  // distinct names.
  explicit RegionTable(std::vector<ServedPool> pools);
  ~RegionTable();

  // Creates a zero-filled region in `pool` (empty: the default pool) and
  // returns its descriptor. Errors: AlreadyExists (name used in any pool),
  // NotFound (unknown pool), FailedPrecondition (secure without an engine),
  // the pool's errors (InvalidArgument, ResourceExhausted, IoError).
  Result<protocol::RegionDesc> Create(std::string_view name, uint64_t size, bool secure,
                                      std::string_view pool);
  // Resolves `name` to its handle (stable until the region is deleted).
  Result<protocol::RegionDesc> Open(std::string_view name);
  std::vector<protocol::RegionDesc> List();
  // Retires the handle, waits for in-flight ops on it to finish, deletes the
  // region. Errors: NotFound, the pool's errors.
  Status Delete(std::string_view name);

  // Data path: pins the region behind `handle`. NotFound for an unknown,
  // stale or deleted handle.
  Result<RegionRef> Lookup(uint64_t handle);

  size_t pool_count() const { return pools_.size(); }
  uint64_t region_count();
  // Name, path-ish description and durability of each pool, for logs.
  std::vector<std::pair<std::string, pmem::PoolInfo>> PoolInfos() const;

  void set_secure_engine(SecureRegionEngine* engine) { secure_engine_ = engine; }
  SecureRegionEngine* secure_engine() const { return secure_engine_; }

 private:
  // REQUIRES: mu_ held exclusively.
  Result<RegionEntry*> Publish(pmem::Region region, const std::string& pool_name);
  RegionEntry* FindByNameLocked(std::string_view name);
  protocol::RegionDesc Describe(const RegionEntry& e) const;

  std::vector<ServedPool> pools_;
  std::shared_mutex mu_;
  std::unique_ptr<std::atomic<RegionEntry*>[]> slots_;
  std::vector<std::unique_ptr<RegionEntry>> entries_;  // owns every entry ever published
  size_t next_slot_ = 0;
  uint32_t epoch_ = 0;  // random per table: handles of an earlier node run never resolve
  SecureRegionEngine* secure_engine_ = nullptr;
};

}  // namespace cosmos::server
