// On-media layout of a COSMOS pool, format version 1 (spec:
// docs/pool_layout.md). Every structure is little-endian, fixed-size, and
// pinned here with static_asserts; code copies structures in and out of the
// mapping with memcpy and never aliases pool bytes as these types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "cosmos/status.h"

namespace cosmos::pmem::layout {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr char kPoolMagic[8] = {'C', 'O', 'S', 'M', 'O', 'S', 'P', 'L'};
inline constexpr uint64_t kBlockSize = 4096;  // alignment of every area and region

// Block 0 holds the immutable header at offset 0 and the mutable pool state
// record at kStateOffset; the region table starts at block 1.
inline constexpr uint64_t kHeaderOffset = 0;
inline constexpr uint64_t kStateOffset = 512;
inline constexpr uint64_t kRegionTableOffset = kBlockSize;

inline constexpr uint32_t kMaxRegionNameLength = 63;  // bytes, excluding the terminating NUL
inline constexpr uint32_t kMetadataSlotSize = 256;    // per-region slot for upper layers
inline constexpr uint32_t kDefaultMaxRegions = 64;
inline constexpr uint32_t kMaxRegionsLimit = 4096;
inline constexpr uint64_t kRedoLogSize = 16 * 1024;

// Seeds make a valid checksum of one structure type invalid for another.
inline constexpr uint64_t kHeaderSeed = 0x434f534d4f534844ull;  // "COSMOSHD"
inline constexpr uint64_t kStateSeed = 0x434f534d4f535354ull;   // "COSMOSST"
inline constexpr uint64_t kEntrySeed = 0x434f534d4f535245ull;   // "COSMOSRE"
inline constexpr uint64_t kRedoHeaderSeed = 0x434f534d4f53524cull;
inline constexpr uint64_t kRedoPayloadSeed = 0x434f534d4f535250ull;

// Immutable after creation. Checksum covers bytes [0, offsetof(checksum)).
struct PoolHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_size;
  uint8_t uuid[16];
  uint64_t pool_size;
  uint64_t created_unix_ns;
  uint64_t region_table_offset;
  uint32_t region_table_capacity;
  uint32_t region_entry_size;
  uint64_t redo_log_offset;
  uint64_t redo_log_size;
  uint64_t data_offset;
  uint64_t data_size;
  uint32_t durability_at_creation;  // DurabilityLevel of the backend that created the pool
  uint32_t flags;                   // reserved, 0 in version 1
  uint8_t reserved[144];
  uint64_t checksum;
};
static_assert(std::is_trivially_copyable_v<PoolHeader>);
static_assert(sizeof(PoolHeader) == 256);
static_assert(offsetof(PoolHeader, version) == 8);
static_assert(offsetof(PoolHeader, uuid) == 16);
static_assert(offsetof(PoolHeader, pool_size) == 32);
static_assert(offsetof(PoolHeader, region_table_offset) == 48);
static_assert(offsetof(PoolHeader, redo_log_offset) == 64);
static_assert(offsetof(PoolHeader, data_offset) == 80);
static_assert(offsetof(PoolHeader, durability_at_creation) == 96);
static_assert(offsetof(PoolHeader, checksum) == 248);

// Mutable pool-wide state; changed only through the redo log.
struct PoolState {
  uint64_t metadata_sequence;  // sequence of the last applied redo record
  uint64_t next_region_id;     // ids are never reused within a pool
  uint32_t region_count;
  uint32_t reserved0;
  uint8_t reserved[32];
  uint64_t checksum;
};
static_assert(std::is_trivially_copyable_v<PoolState>);
static_assert(sizeof(PoolState) == 64);
static_assert(offsetof(PoolState, region_count) == 16);
static_assert(offsetof(PoolState, checksum) == 56);
static_assert(kStateOffset + sizeof(PoolState) <= kRegionTableOffset);

inline constexpr uint32_t kEntryFree = 0;
inline constexpr uint32_t kEntryInUse = 1;

// One region table slot. Changed only through the redo log.
struct RegionEntry {
  uint32_t state;  // kEntryFree or kEntryInUse
  uint32_t flags;  // opaque to pmem; assigned by upper layers
  uint64_t region_id;
  uint64_t offset;  // from the start of the pool; kBlockSize aligned, inside the data area
  uint64_t size;    // bytes visible to users (allocation rounds up to kBlockSize)
  uint64_t created_unix_ns;
  uint32_t name_length;
  uint32_t metadata_length;
  char name[64];                        // name_length bytes, rest zero
  uint8_t metadata[kMetadataSlotSize];  // metadata_length bytes, rest zero
  uint8_t reserved[136];
  uint64_t checksum;
};
static_assert(std::is_trivially_copyable_v<RegionEntry>);
static_assert(sizeof(RegionEntry) == 512);
static_assert(offsetof(RegionEntry, region_id) == 8);
static_assert(offsetof(RegionEntry, offset) == 16);
static_assert(offsetof(RegionEntry, name_length) == 40);
static_assert(offsetof(RegionEntry, name) == 48);
static_assert(offsetof(RegionEntry, metadata) == 112);
static_assert(offsetof(RegionEntry, checksum) == 504);

// Redo log: one record at the start of the log area. magic == 0 means empty.
inline constexpr uint64_t kRedoMagic = 0x31444552534f4d43ull;  // "CMOSRED1" little-endian
struct RedoRecordHeader {
  uint64_t magic;
  uint64_t sequence;
  uint32_t entry_count;
  uint32_t payload_size;  // bytes of entries following this header
  uint64_t payload_checksum;
  uint8_t reserved[24];
  uint64_t header_checksum;  // over bytes [0, 56)
};
static_assert(std::is_trivially_copyable_v<RedoRecordHeader>);
static_assert(sizeof(RedoRecordHeader) == 64);
static_assert(offsetof(RedoRecordHeader, payload_checksum) == 24);
static_assert(offsetof(RedoRecordHeader, header_checksum) == 56);

// Each payload entry: this header, then `length` bytes, padded to 8.
struct RedoEntryHeader {
  uint64_t target_offset;  // from the start of the pool
  uint32_t length;
  uint32_t reserved;
};
static_assert(sizeof(RedoEntryHeader) == 16);

// Rounds `v` up to a multiple of `align` (a power of two). Callers guarantee
// no overflow.
constexpr uint64_t AlignUp(uint64_t v, uint64_t align) { return (v + align - 1) & ~(align - 1); }

// Geometry derived from the capacity and pool size at creation.
struct Geometry {
  uint64_t region_table_offset;
  uint32_t region_table_capacity;
  uint64_t redo_log_offset;
  uint64_t redo_log_size;
  uint64_t data_offset;
  uint64_t data_size;
};

// Smallest pool that can hold the metadata of `max_regions` regions plus
// one data block.
uint64_t MinimumPoolSize(uint32_t max_regions);

// Geometry for a new pool; InvalidArgument if the size is too small.
Status ComputeGeometry(uint64_t pool_size, uint32_t max_regions, Geometry* out);

// Checksums over the structure minus its checksum field.
uint64_t HeaderChecksum(const PoolHeader& h);
uint64_t StateChecksum(const PoolState& s);
uint64_t EntryChecksum(const RegionEntry& e);
uint64_t RedoHeaderChecksum(const RedoRecordHeader& h);

}  // namespace cosmos::pmem::layout
