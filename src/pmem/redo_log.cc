// Single-record redo log for pool metadata.
#include "pmem/redo_log.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/checksum.h"
#include "pmem/layout.h"

namespace cosmos::pmem {

using layout::RedoEntryHeader;
using layout::RedoRecordHeader;

std::string_view RecoveryOutcomeName(RecoveryOutcome outcome) {
  switch (outcome) {
    case RecoveryOutcome::kClean:
      return "clean";
    case RecoveryOutcome::kReplayedRecord:
      return "replayed a complete redo record";
    case RecoveryOutcome::kDiscardedTornRecord:
      return "discarded a torn redo record";
  }
  return "unknown";
}

RedoLog::RedoLog(Mapping* mapping, uint64_t log_offset, uint64_t log_size, uint64_t target_begin,
                 uint64_t target_end, std::string pool_name)
    : mapping_(mapping),
      log_offset_(log_offset),
      log_size_(log_size),
      target_begin_(target_begin),
      target_end_(target_end),
      pool_name_(std::move(pool_name)) {}

Status RedoLog::Corrupt(const std::string& what) const {
  return Status::Corruption("pool " + pool_name_ + ": redo log at offset " +
                            std::to_string(log_offset_) + ": " + what);
}

Status RedoLog::Commit(uint64_t sequence, const std::vector<RedoWrite>& writes) {
  // Build the payload first so a bad request writes nothing.
  std::vector<std::byte> payload;
  for (const RedoWrite& w : writes) {
    if (w.target_offset < target_begin_ || w.target_offset > target_end_ ||
        w.bytes.size() > target_end_ - w.target_offset) {
      return Status::InvalidArgument("pool " + pool_name_ + ": redo write target out of range");
    }
    RedoEntryHeader eh{w.target_offset, static_cast<uint32_t>(w.bytes.size()), 0};
    const size_t at = payload.size();
    payload.resize(at + sizeof(eh) + layout::AlignUp(w.bytes.size(), 8));
    std::memcpy(payload.data() + at, &eh, sizeof(eh));
    if (!w.bytes.empty()) {
      std::memcpy(payload.data() + at + sizeof(eh), w.bytes.data(), w.bytes.size());
    }
  }
  if (payload.size() > log_size_ - sizeof(RedoRecordHeader)) {
    return Status::InvalidArgument("pool " + pool_name_ + ": redo record of " +
                                   std::to_string(payload.size()) + " bytes exceeds the log");
  }

  // 1. Log the record and make it durable. The checksums make a partially
  //    persisted record detectable, so no ordering inside this step matters.
  RedoRecordHeader h{};
  h.magic = layout::kRedoMagic;
  h.sequence = sequence;
  h.entry_count = static_cast<uint32_t>(writes.size());
  h.payload_size = static_cast<uint32_t>(payload.size());
  h.payload_checksum = Checksum64(payload.data(), payload.size(), layout::kRedoPayloadSeed);
  h.header_checksum = layout::RedoHeaderChecksum(h);
  std::byte* log = mapping_->base() + log_offset_;
  if (!payload.empty()) std::memcpy(log + sizeof(h), payload.data(), payload.size());
  std::memcpy(log, &h, sizeof(h));
  COSMOS_RETURN_IF_ERROR(mapping_->Persist(log_offset_, sizeof(h) + payload.size()));

  // 2. Apply to the targets and make them durable.
  for (const RedoWrite& w : writes) {
    if (!w.bytes.empty()) {
      std::memcpy(mapping_->base() + w.target_offset, w.bytes.data(), w.bytes.size());
    }
    COSMOS_RETURN_IF_ERROR(mapping_->Flush(w.target_offset, w.bytes.size()));
  }
  COSMOS_RETURN_IF_ERROR(mapping_->Drain());

  // 3. Retire the record: an aligned 8-byte store of a zero magic is atomic.
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(log)).store(0, std::memory_order_release);
  std::memset(log + offsetof(RedoRecordHeader, header_checksum), 0, sizeof(uint64_t));
  return mapping_->Persist(log_offset_, sizeof(h));
}

Result<RecoveryOutcome> RedoLog::Recover(bool persist) {
  std::byte* log = mapping_->base() + log_offset_;
  RedoRecordHeader h;
  std::memcpy(&h, log, sizeof(h));
  if (h.magic == 0) return RecoveryOutcome::kClean;
  if (h.magic != layout::kRedoMagic) {
    return Corrupt("unknown record magic 0x" + [&] {
      char buf[20];
      std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h.magic));
      return std::string(buf);
    }());
  }

  auto discard = [&]() -> Result<RecoveryOutcome> {
    // A read-only view is private, so clearing it there never reaches the medium.
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(log))
        .store(0, std::memory_order_release);
    if (persist) COSMOS_RETURN_IF_ERROR(mapping_->Persist(log_offset_, sizeof(uint64_t)));
    return RecoveryOutcome::kDiscardedTornRecord;
  };

  if (layout::RedoHeaderChecksum(h) != h.header_checksum) return discard();
  // From here on the header is exactly what a Commit wrote: impossible
  // values mean corruption, not a crash.
  if (h.payload_size > log_size_ - sizeof(h) || h.payload_size % 8 != 0) {
    return Corrupt("record " + std::to_string(h.sequence) + " claims a payload of " +
                   std::to_string(h.payload_size) + " bytes");
  }
  const std::byte* payload = log + sizeof(h);
  if (Checksum64(payload, h.payload_size, layout::kRedoPayloadSeed) != h.payload_checksum) {
    return discard();
  }

  // Validate every entry before applying any.
  std::vector<std::pair<RedoEntryHeader, const std::byte*>> entries;
  size_t at = 0;
  for (uint32_t i = 0; i < h.entry_count; ++i) {
    RedoEntryHeader eh;
    if (h.payload_size - at < sizeof(eh))
      return Corrupt("entry " + std::to_string(i) + " truncated");
    std::memcpy(&eh, payload + at, sizeof(eh));
    const uint64_t padded = layout::AlignUp(eh.length, 8);
    if (padded > h.payload_size - at - sizeof(eh)) {
      return Corrupt("entry " + std::to_string(i) + " overruns the record");
    }
    if (eh.target_offset < target_begin_ || eh.target_offset > target_end_ ||
        eh.length > target_end_ - eh.target_offset) {
      return Corrupt("entry " + std::to_string(i) + " targets [" +
                     std::to_string(eh.target_offset) + ", +" + std::to_string(eh.length) +
                     ") outside the metadata area");
    }
    entries.emplace_back(eh, payload + at + sizeof(eh));
    at += sizeof(eh) + padded;
  }
  if (at != h.payload_size) return Corrupt("payload has trailing bytes");

  for (const auto& [eh, bytes] : entries) {
    std::memcpy(mapping_->base() + eh.target_offset, bytes, eh.length);
    if (persist) COSMOS_RETURN_IF_ERROR(mapping_->Flush(eh.target_offset, eh.length));
  }
  if (persist) COSMOS_RETURN_IF_ERROR(mapping_->Drain());
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(log)).store(0, std::memory_order_release);
  if (persist) COSMOS_RETURN_IF_ERROR(mapping_->Persist(log_offset_, sizeof(uint64_t)));
  return RecoveryOutcome::kReplayedRecord;
}

Status RedoLog::CheckEmpty() const {
  uint64_t magic;
  std::memcpy(&magic, mapping_->base() + log_offset_, sizeof(magic));
  if (magic != 0) return Corrupt("holds an unapplied record on an open pool");
  return Status::Ok();
}

}  // namespace cosmos::pmem
