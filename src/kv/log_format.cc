// Record, superblock and segment-header encoding for the cosmos-kv log.
#include "kv/log_format.h"

#include <cstring>

#include "common/checksum.h"
#include "common/endian.h"

namespace cosmos::kv {

void EncodeRecord(RecordType type, uint64_t sequence, int64_t expiry_ms, std::string_view key,
                  std::string_view value, uint8_t flags, uint32_t epoch, std::string* out) {
  const uint64_t size = RecordSize(key.size(), value.size());
  const size_t start = out->size();
  out->resize(start + size);
  char* p = out->data() + start;
  std::memset(p, 0, kRecordHeaderSize);
  StoreLE<uint32_t>(p + RecordLayout::kMagic, kRecordMagic);
  p[RecordLayout::kType] = static_cast<char>(type);
  p[RecordLayout::kFlags] = static_cast<char>(flags);
  StoreLE<uint32_t>(p + RecordLayout::kEpoch, epoch);
  StoreLE<uint64_t>(p + RecordLayout::kSequence, sequence);
  StoreLE<int64_t>(p + RecordLayout::kExpiry, expiry_ms);
  StoreLE<uint32_t>(p + RecordLayout::kKeyLen, static_cast<uint32_t>(key.size()));
  StoreLE<uint64_t>(p + RecordLayout::kValueLen, value.size());
  if (!key.empty()) std::memcpy(p + kRecordHeaderSize, key.data(), key.size());
  if (!value.empty()) std::memcpy(p + kRecordHeaderSize + key.size(), value.data(), value.size());
  const uint64_t used = kRecordHeaderSize + key.size() + value.size();
  std::memset(p + used, 0, size - used);
  StoreLE<uint64_t>(p, Checksum64(p + 8, used - 8, kRecordSeed));
}

Result<RecordHeader> DecodeRecordHeader(const char* header, uint64_t available,
                                        std::string_view where) {
  auto bad = [&](const char* what) {
    return Status::Corruption("kv log record at " + std::string(where) + ": " + what);
  };
  if (available < kRecordHeaderSize) return bad("truncated header");
  if (LoadLE<uint32_t>(header + RecordLayout::kMagic) != kRecordMagic) return bad("bad magic");
  RecordHeader h;
  const uint8_t type = static_cast<uint8_t>(header[RecordLayout::kType]);
  if (type < 1 || type > kMaxRecordType) return bad("unknown record type");
  h.type = static_cast<RecordType>(type);
  h.flags = static_cast<uint8_t>(header[RecordLayout::kFlags]);
  if ((h.flags & ~kRecordFlagBatchEnd) != 0) return bad("unknown record flags");
  h.epoch = LoadLE<uint32_t>(header + RecordLayout::kEpoch);
  h.sequence = LoadLE<uint64_t>(header + RecordLayout::kSequence);
  h.expiry_ms = LoadLE<int64_t>(header + RecordLayout::kExpiry);
  h.key_len = LoadLE<uint32_t>(header + RecordLayout::kKeyLen);
  h.value_len = LoadLE<uint64_t>(header + RecordLayout::kValueLen);
  if (h.value_len > available || h.key_len > available ||
      RecordSize(h.key_len, h.value_len) > available) {
    return bad("length beyond log tail");
  }
  h.size = RecordSize(h.key_len, h.value_len);
  return h;
}

void MarkBatchEnd(char* record) {
  record[RecordLayout::kFlags] =
      static_cast<char>(record[RecordLayout::kFlags] | kRecordFlagBatchEnd);
  const uint64_t used = kRecordHeaderSize + LoadLE<uint32_t>(record + RecordLayout::kKeyLen) +
                        LoadLE<uint64_t>(record + RecordLayout::kValueLen);
  StoreLE<uint64_t>(record, Checksum64(record + 8, used - 8, kRecordSeed));
}

bool RecordChecksumOk(const char* record, const RecordHeader& h) {
  const uint64_t used = kRecordHeaderSize + h.key_len + h.value_len;
  return LoadLE<uint64_t>(record) == Checksum64(record + 8, used - 8, kRecordSeed);
}

void EncodeSuperblock(uint64_t device_size, uint64_t half_size, char* out) {
  std::memset(out, 0, kSuperblockSize);
  StoreLE<uint64_t>(out + SuperblockLayout::kMagic, kSuperblockMagic);
  StoreLE<uint32_t>(out + SuperblockLayout::kVersion, kFormatVersion);
  StoreLE<uint32_t>(out + SuperblockLayout::kHeaderSize, static_cast<uint32_t>(kHeaderAreaSize));
  StoreLE<uint64_t>(out + SuperblockLayout::kDeviceSize, device_size);
  StoreLE<uint64_t>(out + SuperblockLayout::kHalfSize, half_size);
  StoreLE<uint64_t>(out + SuperblockLayout::kHalf0, kHeaderAreaSize);
  StoreLE<uint64_t>(out + SuperblockLayout::kHalf1, kHeaderAreaSize + half_size);
  StoreLE<uint64_t>(out + SuperblockLayout::kChecksum,
                    Checksum64(out, SuperblockLayout::kChecksum, kSuperblockSeed));
}

void EncodeSegmentHeader(uint64_t generation, char* out) {
  std::memset(out, 0, kSegmentHeaderSize);
  StoreLE<uint64_t>(out + SegmentLayout::kMagic, kSegmentMagic);
  StoreLE<uint64_t>(out + SegmentLayout::kGeneration, generation);
  StoreLE<uint64_t>(out + SegmentLayout::kChecksum,
                    Checksum64(out, SegmentLayout::kChecksum, kSegmentSeed));
}

}  // namespace cosmos::kv
