// PmemUntrustedStore: byte access and persistence of a pmem region for the
// protected-region engine.
#include "server/pmem_untrusted_store.h"

#include <cstring>
#include <string>

namespace cosmos::server {

Status PmemUntrustedStore::CheckRange(uint64_t offset, uint64_t length) const {
  if (offset > region_->size() || length > region_->size() - offset) {
    return Status::OutOfRange("region " + region_->name() + ": range [" + std::to_string(offset) +
                              ", +" + std::to_string(length) + ") outside " +
                              std::to_string(region_->size()) + " bytes");
  }
  return Status::Ok();
}

Status PmemUntrustedStore::Read(uint64_t offset, sec::MutableByteSpan out) {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, out.size()));
  if (!out.empty()) std::memcpy(out.data(), region_->data() + offset, out.size());
  return Status::Ok();
}

Status PmemUntrustedStore::Write(uint64_t offset, sec::ByteSpan data) {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, data.size()));
  if (!data.empty()) std::memcpy(region_->data() + offset, data.data(), data.size());
  return Status::Ok();
}

Status PmemUntrustedStore::Persist(std::span<const sec::ByteRange> ranges) {
  bool any = false;
  for (const sec::ByteRange& r : ranges) {
    COSMOS_RETURN_IF_ERROR(CheckRange(r.offset, r.length));
    if (r.length == 0) continue;
    COSMOS_RETURN_IF_ERROR(region_->Flush(r.offset, r.length));
    any = true;
  }
  return any ? region_->Drain() : Status::Ok();
}

}  // namespace cosmos::server
