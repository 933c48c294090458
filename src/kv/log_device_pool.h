// PoolLogDevice: a LogDevice over one region of a local COSMOS pmem pool
// (src/pmem/pool.h). Write is a memcpy into the mapping, Flush is the pool's
// persist of that range, WriteAfterFlush an 8-byte atomic store + persist.
// The durability level is the pool's honest one: "cacheline"/"byte" on DAX,
// "page" on a regular file (msync), "none" on tmpfs or DRAM.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cosmos/result.h"
#include "kv/log_device.h"
#include "pmem/pool.h"

namespace cosmos::kv {

struct PoolLogDeviceOptions {
  std::string path;           // pool file
  std::string region = "kv";  // region name inside the pool
  uint64_t pool_size = 0;     // size of a new pool file (ignored when it exists)
  uint64_t region_size = 0;   // size of a new region; 0: the largest free extent
  pmem::BackendKind backend = pmem::BackendKind::kAuto;  // how the pool is mapped
};

// Thread-safety: every method may be called concurrently on disjoint ranges
// (the mapping is shared; Persist and AtomicStore64 are thread-safe).
class PoolLogDevice final : public LogDevice {
 public:
  // Opens the pool at options.path, creating it with options.pool_size bytes
  // if missing, then opens the named region, creating it (zero-filled) if
  // missing. Errors: InvalidArgument (pool_size 0 for a missing pool, bad
  // region name, region smaller than 1 MiB), the pool's Create/Open/
  // CreateRegion errors (Unavailable when another process holds the pool,
  // Corruption, ResourceExhausted, IoError).
  static Result<std::unique_ptr<PoolLogDevice>> Open(const PoolLogDeviceOptions& options);
  // Wraps an already open region (tests: DRAM or fault-injection pools).
  // `pool` must be the pool `region` belongs to; both are owned.
  static std::unique_ptr<PoolLogDevice> Wrap(std::unique_ptr<pmem::Pool> pool, pmem::Region region,
                                             std::string label);
  // Releases the region and closes the pool (data already persisted stays).
  ~PoolLogDevice() override;

  uint64_t Size() const override { return region_.size(); }
  std::string_view DurabilityLevel() const override { return durability_; }
  std::string_view BackendName() const override { return name_; }

  // True if the pool or the region were created by Open.
  bool created() const { return created_; }

  Status Read(uint64_t offset, void* out, size_t len) override;
  Status Write(uint64_t offset, const void* data, size_t len) override;
  Status Flush(uint64_t offset, uint64_t len) override;
  Status WriteAfterFlush(uint64_t offset, uint64_t value) override;

 private:
  PoolLogDevice(std::unique_ptr<pmem::Pool> pool, pmem::Region region, std::string name);
  Status CheckRange(uint64_t offset, uint64_t len) const;

  std::unique_ptr<pmem::Pool> pool_;
  pmem::Region region_;  // destroyed before pool_ (declared after it)
  std::string name_;
  std::string durability_;
  bool created_ = false;
};

}  // namespace cosmos::kv
