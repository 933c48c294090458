// PoolLogDevice implementation: direct loads/stores into a pool region.
#include "kv/log_device_pool.h"

#include <cstring>
#include <filesystem>
#include <system_error>

namespace cosmos::kv {

namespace {
constexpr uint64_t kMinRegionSize = 1u << 20;
}  // namespace

PoolLogDevice::PoolLogDevice(std::unique_ptr<pmem::Pool> pool, pmem::Region region,
                             std::string name)
    : pool_(std::move(pool)),
      region_(std::move(region)),
      name_(std::move(name)),
      durability_(pmem::DurabilityName(region_.durability())) {}

PoolLogDevice::~PoolLogDevice() {
  // Region handle first: the pool cannot close while handles exist.
  { pmem::Region dropped = std::move(region_); }
  if (pool_) (void)pool_->Close();
}

std::unique_ptr<PoolLogDevice> PoolLogDevice::Wrap(std::unique_ptr<pmem::Pool> pool,
                                                   pmem::Region region, std::string label) {
  return std::unique_ptr<PoolLogDevice>(
      new PoolLogDevice(std::move(pool), std::move(region), std::move(label)));
}

Result<std::unique_ptr<PoolLogDevice>> PoolLogDevice::Open(const PoolLogDeviceOptions& options) {
  pmem::PoolOptions popts;
  popts.backend = options.backend;
  bool created = false;
  std::error_code ec;
  std::unique_ptr<pmem::Pool> pool;
  if (!std::filesystem::exists(options.path, ec)) {
    if (options.pool_size == 0) {
      return Status::InvalidArgument("pool " + options.path + " does not exist and no size given");
    }
    auto p = pmem::Pool::Create(options.path, options.pool_size, popts);
    if (!p.ok()) return p.status();
    pool = std::move(*p);
    created = true;
  } else {
    auto p = pmem::Pool::Open(options.path, popts);
    if (!p.ok()) return p.status();
    pool = std::move(*p);
  }
  auto region = pool->OpenRegion(options.region);
  if (!region.ok() && region.status().code() == StatusCode::kNotFound) {
    uint64_t size = options.region_size;
    if (size == 0) size = pool->Info().largest_free_extent;
    size -= size % 4096;
    if (size < kMinRegionSize) {
      return Status::InvalidArgument("pool " + options.path + ": region '" + options.region +
                                     "' would be " + std::to_string(size) +
                                     " bytes; at least 1 MiB needed");
    }
    region = pool->CreateRegion(options.region, size);
    created = true;
  }
  if (!region.ok()) return region.status();
  if (region->size() < kMinRegionSize) {
    return Status::InvalidArgument("pool " + options.path + ": region '" + options.region +
                                   "' is smaller than 1 MiB");
  }
  const pmem::PoolInfo info = pool->Info();
  std::string name = "local-pool " + options.path + " region " + options.region + " (" +
                     info.backend + " mapping)";
  auto dev = std::unique_ptr<PoolLogDevice>(
      new PoolLogDevice(std::move(pool), std::move(*region), std::move(name)));
  dev->created_ = created;
  return dev;
}

Status PoolLogDevice::CheckRange(uint64_t offset, uint64_t len) const {
  if (offset > region_.size() || len > region_.size() - offset) {
    return Status::OutOfRange("pool log device: range [" + std::to_string(offset) + ", +" +
                              std::to_string(len) + ") outside " + std::to_string(region_.size()) +
                              " bytes");
  }
  return Status::Ok();
}

Status PoolLogDevice::Read(uint64_t offset, void* out, size_t len) {
  if (Status s = CheckRange(offset, len); !s.ok()) return s;
  if (len > 0) std::memcpy(out, region_.data() + offset, len);
  return Status::Ok();
}

Status PoolLogDevice::Write(uint64_t offset, const void* data, size_t len) {
  if (Status s = CheckRange(offset, len); !s.ok()) return s;
  if (len > 0) std::memcpy(region_.data() + offset, data, len);
  return Status::Ok();
}

Status PoolLogDevice::Flush(uint64_t offset, uint64_t len) {
  if (Status s = CheckRange(offset, len); !s.ok()) return s;
  if (len == 0) return Status::Ok();
  return region_.Persist(offset, len);
}

Status PoolLogDevice::WriteAfterFlush(uint64_t offset, uint64_t value) {
  if (offset % 8 != 0) {
    return Status::InvalidArgument("pool log device: WriteAfterFlush offset " +
                                   std::to_string(offset) + " is not 8-byte aligned");
  }
  if (Status s = CheckRange(offset, 8); !s.ok()) return s;
  // Every earlier Flush returned only once durable (Persist is synchronous),
  // so this store is ordered after them.
  return region_.AtomicStore64(offset, value);
}

}  // namespace cosmos::kv
