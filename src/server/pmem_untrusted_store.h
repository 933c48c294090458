// PmemUntrustedStore: the sec::UntrustedStore a secure region's ProtectedRegion
// engine lives in, over one pmem::Region of the node's pool. Everything in it
// is ciphertext, tags, versions, tree nodes and sealed records; the host may
// read or tamper with all of it (the engine detects that).
#pragma once

#include <optional>
#include <span>

#include "pmem/pool.h"
#include "sec/untrusted_store.h"

namespace cosmos::server {

// Owns the region handle, or borrows one that outlives it (the server's
// region table keeps every handle until shutdown); the pool must outlive the
// store. Writes are plain stores into the mapping; Persist flushes
// every range and then drains once, so a multi-range persist costs one fence
// (one msync on a page-durable pool). Not thread-safe (the engine serialises).
class PmemUntrustedStore final : public sec::UntrustedStore {
 public:
  // REQUIRES: `region` belongs to a pool opened read-write.
  explicit PmemUntrustedStore(pmem::Region region) : owned_(std::move(region)), region_(&*owned_) {}
  // REQUIRES: as above; `region` outlives the store.
  explicit PmemUntrustedStore(const pmem::Region* region) : region_(region) {}
  PmemUntrustedStore(const PmemUntrustedStore&) = delete;
  PmemUntrustedStore& operator=(const PmemUntrustedStore&) = delete;

  uint64_t Size() const override { return region_->size(); }
  // OutOfRange past the end of the region.
  [[nodiscard]] Status Read(uint64_t offset, sec::MutableByteSpan out) override;
  // OutOfRange past the end of the region. Not durable until Persist.
  [[nodiscard]] Status Write(uint64_t offset, sec::ByteSpan data) override;
  // Flush of each non-empty range, then one Drain. OutOfRange for a range
  // past the end; IoError (sticky on page pools) from the pool.
  [[nodiscard]] Status Persist(std::span<const sec::ByteRange> ranges) override;

  const pmem::Region& region() const { return *region_; }

 private:
  Status CheckRange(uint64_t offset, uint64_t length) const;
  std::optional<pmem::Region> owned_;
  const pmem::Region* region_;
};

}  // namespace cosmos::server
