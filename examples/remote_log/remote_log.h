// RemoteLog: the talk's log writer on a remote COSMOS region. Append = write
// the record, flush it, then write_after_flush the tail pointer (one round
// trip); Recover finds the durable prefix after any crash.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cosmos/client.h"

namespace remote_log {

// Region layout: bytes [0, 8) hold the tail (end offset of the last
// acknowledged record, 0 = empty log); records start at kDataStart, each a
// 24-byte header (u32 magic, u32 length, u64 sequence, u64 XXH3 of sequence
// and payload) followed by the payload, padded to 8 bytes.
inline constexpr uint64_t kDataStart = 64;
inline constexpr uint64_t kRecordHeader = 24;
inline constexpr uint32_t kRecordMagic = 0x474f4c52;  // "RLOG"

struct Record {
  uint64_t sequence = 0;
  std::vector<std::byte> payload;
};

// Thread-safety: as the Region it wraps (one thread).
class RemoteLog {
 public:
  // Opens the log in `region` (recovering its tail). Corruption if a record
  // before the tail does not validate (an acknowledged record was lost).
  static cosmos::Result<std::unique_ptr<RemoteLog>> Open(cosmos::Region* region);

  // Appends a record and returns its sequence number once the record and the
  // new tail are durable. ResourceExhausted when the region is full; any
  // error of the Region calls (then the record is not acknowledged: after
  // recovery it is either absent or present, never torn into the prefix).
  cosmos::Result<uint64_t> Append(std::span<const std::byte> payload);

  // Reads every record of the durable prefix (the records before the tail).
  cosmos::Result<std::vector<Record>> ReadAll();

  uint64_t tail() const { return tail_; }
  uint64_t next_sequence() const { return next_sequence_; }

 private:
  explicit RemoteLog(cosmos::Region* region) : region_(region) {}
  cosmos::Status Recover();

  cosmos::Region* region_;
  uint64_t tail_ = kDataStart;
  uint64_t next_sequence_ = 1;
};

// Checksum of one record (sequence and payload).
uint64_t RecordChecksum(uint64_t sequence, std::span<const std::byte> payload);

}  // namespace remote_log
