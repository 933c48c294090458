// Checksums and geometry of the version 1 pool layout.
#include "pmem/layout.h"

#include <string>

#include "common/checksum.h"

namespace cosmos::pmem::layout {

uint64_t MinimumPoolSize(uint32_t max_regions) {
  const uint64_t table = AlignUp(uint64_t{max_regions} * sizeof(RegionEntry), kBlockSize);
  return kRegionTableOffset + table + kRedoLogSize + kBlockSize;
}

Status ComputeGeometry(uint64_t pool_size, uint32_t max_regions, Geometry* out) {
  if (max_regions == 0 || max_regions > kMaxRegionsLimit) {
    return Status::InvalidArgument("max_regions must be in [1, " +
                                   std::to_string(kMaxRegionsLimit) + "], got " +
                                   std::to_string(max_regions));
  }
  const uint64_t min = MinimumPoolSize(max_regions);
  if (pool_size < min) {
    return Status::InvalidArgument("pool size " + std::to_string(pool_size) +
                                   " is below the minimum " + std::to_string(min) + " for " +
                                   std::to_string(max_regions) + " regions");
  }
  out->region_table_offset = kRegionTableOffset;
  out->region_table_capacity = max_regions;
  out->redo_log_offset =
      kRegionTableOffset + AlignUp(uint64_t{max_regions} * sizeof(RegionEntry), kBlockSize);
  out->redo_log_size = kRedoLogSize;
  out->data_offset = out->redo_log_offset + kRedoLogSize;
  out->data_size = (pool_size & ~(kBlockSize - 1)) - out->data_offset;
  return Status::Ok();
}

uint64_t HeaderChecksum(const PoolHeader& h) {
  return Checksum64(&h, offsetof(PoolHeader, checksum), kHeaderSeed);
}
uint64_t StateChecksum(const PoolState& s) {
  return Checksum64(&s, offsetof(PoolState, checksum), kStateSeed);
}
uint64_t EntryChecksum(const RegionEntry& e) {
  return Checksum64(&e, offsetof(RegionEntry, checksum), kEntrySeed);
}
uint64_t RedoHeaderChecksum(const RedoRecordHeader& h) {
  return Checksum64(&h, offsetof(RedoRecordHeader, header_checksum), kRedoHeaderSeed);
}

}  // namespace cosmos::pmem::layout
