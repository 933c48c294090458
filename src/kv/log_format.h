// On-device layout of the cosmos-kv log, version 3 (spec: docs/kv.md).
// Superblock, control words, two log halves each with a segment header,
// and checksummed records. Offsets and sizes are pinned with static_assert.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cosmos/result.h"

namespace cosmos::kv {

inline constexpr uint64_t kSuperblockMagic = 0x31564b534f4d534full;  // "OSMOSKV1" LE
// v2 adds commit-group flags and the open epoch to records, the open-epoch and
// per-half base-sequence control words, and recovery past the tail word (one
// flush per commit). A v1 log is a valid v2 log (those fields are zero) and
// is upgraded in place on open. v3 adds typed-value put records (hashes,
// lists, sets, sorted sets); v1 and v2 logs are valid v3 logs.
inline constexpr uint32_t kFormatVersion = 3;
inline constexpr uint32_t kOldestReadableFormatVersion = 1;
inline constexpr uint64_t kHeaderAreaSize = 4096;  // superblock + control words
inline constexpr uint64_t kSuperblockSize = 64;
// Control words (8-byte, updated only with WriteAfterFlush).
inline constexpr uint64_t kActiveGenerationOffset = 512;
inline constexpr uint64_t kTailOffset0 = 520;  // tail of half 0 (bytes of records)
inline constexpr uint64_t kTailOffset1 = 528;  // tail of half 1
// v2: incremented (WriteAfterFlush) by every open before its first append;
// records carry the low 32 bits of the epoch that wrote them.
inline constexpr uint64_t kOpenEpochOffset = 536;
// v2: per half, a sequence number >= every sequence assigned before the
// compaction that started the half's current generation.
inline constexpr uint64_t kBaseSequenceOffset0 = 544;
inline constexpr uint64_t kBaseSequenceOffset1 = 552;
inline constexpr uint64_t kSegmentHeaderSize = 64;
inline constexpr uint64_t kSegmentMagic = 0x31474553564b4f43ull;  // "COKVSEG1" LE
inline constexpr uint32_t kRecordMagic = 0x3152564bu;             // "KVR1" LE
inline constexpr uint64_t kRecordHeaderSize = 48;
inline constexpr uint64_t kMinDeviceSize = kHeaderAreaSize + 2 * (kSegmentHeaderSize + 4096);

// Checksum seeds keep one structure's checksum invalid for another.
inline constexpr uint64_t kSuperblockSeed = 0x6b76'7375'7065'7231ull;
inline constexpr uint64_t kSegmentSeed = 0x6b76'7365'676d'6e74ull;
inline constexpr uint64_t kRecordSeed = 0x6b76'7265'636f'7264ull;

// Superblock field offsets (all little-endian).
struct SuperblockLayout {
  static constexpr size_t kMagic = 0;        // u64
  static constexpr size_t kVersion = 8;      // u32
  static constexpr size_t kHeaderSize = 12;  // u32 = kHeaderAreaSize
  static constexpr size_t kDeviceSize = 16;  // u64
  static constexpr size_t kHalfSize = 24;    // u64 bytes per half (segment header included)
  static constexpr size_t kHalf0 = 32;       // u64 device offset of half 0
  static constexpr size_t kHalf1 = 40;       // u64 device offset of half 1
  static constexpr size_t kChecksum = 48;    // u64 over [0, 48)
  static constexpr size_t kEnd = 56;
};
static_assert(SuperblockLayout::kEnd <= kSuperblockSize);
static_assert(kActiveGenerationOffset >= kSuperblockSize && kTailOffset1 + 8 <= kHeaderAreaSize);
static_assert(kOpenEpochOffset == kTailOffset1 + 8 && kBaseSequenceOffset1 + 8 <= kHeaderAreaSize);

// Segment header at the start of each half.
struct SegmentLayout {
  static constexpr size_t kMagic = 0;       // u64
  static constexpr size_t kGeneration = 8;  // u64; the half is generation % 2
  static constexpr size_t kChecksum = 16;   // u64 over [0, 16)
  static constexpr size_t kEnd = 24;
};
static_assert(SegmentLayout::kEnd <= kSegmentHeaderSize);

enum class RecordType : uint8_t {
  kPut = 1,     // key -> value, with absolute expiry (0 = none)
  kDelete = 2,  // key removed
  kExpire = 3,  // key's absolute expiry set (value unchanged)
  kClear = 4,   // every key removed (FLUSHDB)
  // v3: key -> typed value (hash, list, set, sorted set), with absolute
  // expiry; the value starts with a TypedValueLayout header.
  kPutTyped = 5,
  // v3: changes (a field set, an element pushed, ...) to the typed value of
  // an existing key, applied in log order on top of its last kPutTyped
  // record; the value starts with a TypedValueLayout header whose version
  // is kTypedDeltaVersion. Expiry is ignored (the key keeps its own).
  kTypedDelta = 6,
};
inline constexpr uint8_t kMaxRecordType = 6;

// The type of a key's value. Strings are kPut records; the other types are
// kPutTyped records whose value header carries this byte.
enum class ValueType : uint8_t {
  kString = 0,
  kHash = 1,
  kList = 2,
  kSet = 3,
  kZSet = 4,
};

// Header at the start of a kPutTyped record's value (whole-value encoding,
// spec: docs/kv.md "Typed values"). The payload after it is decoded by
// kv/value_codec.h; the store itself reads only the type byte.
struct TypedValueLayout {
  static constexpr size_t kVersion = 0;   // u8: encoding version (kTypedValueVersion)
  static constexpr size_t kType = 1;      // u8: ValueType (never kString)
  static constexpr size_t kReserved = 2;  // u16 zero
  static constexpr size_t kCount = 4;     // u32: number of elements (pairs for a hash)
  static constexpr size_t kSize = 8;      // payload follows
};
inline constexpr uint8_t kTypedValueVersion = 1;
// Version byte of a kTypedDelta value (same header; kCount counts
// operations): bit 7 marks a delta, bits 0-6 its version (1), so a whole
// value can never be taken for a delta or the reverse.
inline constexpr uint8_t kTypedDeltaVersion = 0x81;

// Record header; key bytes, value bytes and zero padding to 8 follow.
struct RecordLayout {
  static constexpr size_t kChecksum = 0;   // u64 over [8, 48 + key_len + value_len)
  static constexpr size_t kMagic = 8;      // u32
  static constexpr size_t kType = 12;      // u8
  static constexpr size_t kFlags = 13;     // u8 (v2; v1: 0), then 2 zero bytes
  static constexpr size_t kSequence = 16;  // u64
  static constexpr size_t kExpiry = 24;    // i64 unix ms, 0 = none
  static constexpr size_t kKeyLen = 32;    // u32
  static constexpr size_t kEpoch = 36;     // u32: open epoch of the writer (v2; v1: 0)
  static constexpr size_t kValueLen = 40;  // u64
};
static_assert(RecordLayout::kValueLen + 8 == kRecordHeaderSize);

// Record flag: the last record of an atomic WriteBatch. Recovery applies
// records past the durable tail word only in complete groups.
inline constexpr uint8_t kRecordFlagBatchEnd = 0x01;

// Sets the batch-end flag of the encoded record at `record` (a complete
// record produced by EncodeRecord) and recomputes its checksum.
void MarkBatchEnd(char* record);

// Total bytes a record with these lengths occupies (header + data, padded to 8).
inline constexpr uint64_t RecordSize(uint64_t key_len, uint64_t value_len) {
  return (kRecordHeaderSize + key_len + value_len + 7) & ~7ull;
}

// Appends the encoded record to `out`. `flags`: kRecordFlagBatchEnd or 0;
// `epoch`: the writer's open epoch (low 32 bits).
void EncodeRecord(RecordType type, uint64_t sequence, int64_t expiry_ms, std::string_view key,
                  std::string_view value, uint8_t flags, uint32_t epoch, std::string* out);

// A decoded record header (key/value are located by offsets).
struct RecordHeader {
  RecordType type;
  uint64_t sequence;
  int64_t expiry_ms;
  uint32_t key_len;
  uint64_t value_len;
  uint8_t flags;   // kRecordFlagBatchEnd or 0
  uint32_t epoch;  // open epoch of the writer (0 in v1 logs)
  uint64_t size;   // RecordSize(key_len, value_len)
};

// Validates the fixed header at `header` (kRecordHeaderSize bytes) against
// `available` bytes remaining in the log. Corruption on bad magic, type,
// flags or lengths (message names `where`).
Result<RecordHeader> DecodeRecordHeader(const char* header, uint64_t available,
                                        std::string_view where);
// True if the checksum of the complete record at `record` (h.size bytes) holds.
bool RecordChecksumOk(const char* record, const RecordHeader& h);

// Encodes a superblock into `out` (kSuperblockSize bytes).
void EncodeSuperblock(uint64_t device_size, uint64_t half_size, char* out);
// Encodes a segment header for `generation` into `out` (kSegmentHeaderSize bytes).
void EncodeSegmentHeader(uint64_t generation, char* out);

}  // namespace cosmos::kv
