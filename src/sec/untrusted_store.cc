// MemoryStore and CrashingStore: in-memory twins of the untrusted pmem store.
#include "sec/untrusted_store.h"

#include <algorithm>
#include <cstring>

namespace cosmos::sec {
namespace {
Status CheckRange(uint64_t size, uint64_t offset, uint64_t len) {
  if (offset > size || len > size - offset) {
    return Status::OutOfRange("store access [" + std::to_string(offset) + ", +" +
                              std::to_string(len) + ") past end " + std::to_string(size));
  }
  return Status::Ok();
}
}  // namespace

Status MemoryStore::Read(uint64_t offset, MutableByteSpan out) {
  COSMOS_RETURN_IF_ERROR(CheckRange(bytes_.size(), offset, out.size()));
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
  return Status::Ok();
}

Status MemoryStore::Write(uint64_t offset, ByteSpan data) {
  COSMOS_RETURN_IF_ERROR(CheckRange(bytes_.size(), offset, data.size()));
  if (!data.empty()) std::memcpy(bytes_.data() + offset, data.data(), data.size());
  return Status::Ok();
}

Status MemoryStore::Persist(std::span<const ByteRange> ranges) {
  ++persist_calls_;
  for (const ByteRange& r : ranges)
    COSMOS_RETURN_IF_ERROR(CheckRange(bytes_.size(), r.offset, r.length));
  return Status::Ok();
}

CrashingStore::CrashingStore(Bytes initial, Options options)
    : volatile_(initial), durable_(std::move(initial)), options_(options), rng_(options.seed) {}

Status CrashingStore::Read(uint64_t offset, MutableByteSpan out) {
  if (crashed_) return Status::IoError("store crashed");
  COSMOS_RETURN_IF_ERROR(CheckRange(volatile_.size(), offset, out.size()));
  if (!out.empty()) std::memcpy(out.data(), volatile_.data() + offset, out.size());
  return Status::Ok();
}

Status CrashingStore::Write(uint64_t offset, ByteSpan data) {
  if (crashed_) return Status::IoError("store crashed");
  COSMOS_RETURN_IF_ERROR(CheckRange(volatile_.size(), offset, data.size()));
  if (!data.empty()) std::memcpy(volatile_.data() + offset, data.data(), data.size());
  return Status::Ok();
}

Status CrashingStore::Persist(std::span<const ByteRange> ranges) {
  if (crashed_) return Status::IoError("store crashed");
  for (const ByteRange& r : ranges) {
    COSMOS_RETURN_IF_ERROR(CheckRange(volatile_.size(), r.offset, r.length));
  }
  ++persist_calls_;
  if (options_.crash_at != 0 && persist_calls_ == options_.crash_at) {
    Crash(ranges);
    return Status::IoError("store crashed during persist");
  }
  for (const ByteRange& r : ranges) {
    std::memcpy(durable_.data() + r.offset, volatile_.data() + r.offset, r.length);
  }
  return Status::Ok();
}

void CrashingStore::Crash(std::span<const ByteRange> ranges) {
  crashed_ = true;
  // Torn persist: each 8-byte word of the persisted ranges reaches media or not.
  for (const ByteRange& r : ranges) {
    for (uint64_t off = r.offset; off < r.offset + r.length; off += 8) {
      const uint64_t n = std::min<uint64_t>(8, r.offset + r.length - off);
      if (rng_() & 1) std::memcpy(durable_.data() + off, volatile_.data() + off, n);
    }
  }
  if (!options_.leak_unpersisted) return;
  for (uint64_t off = 0; off < volatile_.size(); off += 8) {
    const uint64_t n = std::min<uint64_t>(8, volatile_.size() - off);
    if (std::memcmp(durable_.data() + off, volatile_.data() + off, n) != 0 && (rng_() % 4) == 0) {
      std::memcpy(durable_.data() + off, volatile_.data() + off, n);
    }
  }
}

}  // namespace cosmos::sec
