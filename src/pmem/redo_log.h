// RedoLog: makes a set of small metadata writes (pool state, region table
// entries) atomic with respect to crashes. One record at a time: write and
// persist the checksummed record, apply it, persist the targets, clear it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cosmos/result.h"
#include "pmem/mapping.h"

namespace cosmos::pmem {

// One metadata write: `bytes` go to pool offset `target_offset`.
struct RedoWrite {
  uint64_t target_offset;
  std::vector<std::byte> bytes;
};

enum class RecoveryOutcome {
  kClean,                // the log was empty
  kReplayedRecord,       // a complete record was found and applied again
  kDiscardedTornRecord,  // an incomplete record (crash while logging) was dropped
};
std::string_view RecoveryOutcomeName(RecoveryOutcome outcome);

// Operates on the log area [log_offset, log_offset + log_size) of `mapping`;
// record targets must lie in [target_begin, target_end). Not thread-safe:
// the pool serializes metadata changes.
class RedoLog {
 public:
  // `pool_name` names the pool in error messages. `mapping` must outlive the log.
  RedoLog(Mapping* mapping, uint64_t log_offset, uint64_t log_size, uint64_t target_begin,
          uint64_t target_end, std::string pool_name);

  // Applies `writes` atomically: after a crash at any point, recovery yields
  // either none or all of them. `sequence` is stored in the record.
  // Errors: InvalidArgument (record too large / bad target; nothing written),
  // IoError from the mapping (the in-memory view may then be ahead of the
  // medium; the pool must be reopened).
  Status Commit(uint64_t sequence, const std::vector<RedoWrite>& writes);

  // Inspects the log: an empty log is kClean; a complete record is applied
  // to the view and, when `persist`, persisted and cleared (kReplayedRecord);
  // a torn record is dropped (cleared only when `persist`).
  // Errors: Corruption for a record no crash can produce (unknown magic,
  // a checksummed record with impossible sizes or targets); IoError.
  Result<RecoveryOutcome> Recover(bool persist);

  // Ok if the log is empty; Corruption naming the problem otherwise.
  Status CheckEmpty() const;

 private:
  Status Corrupt(const std::string& what) const;

  Mapping* mapping_;
  uint64_t log_offset_;
  uint64_t log_size_;
  uint64_t target_begin_;
  uint64_t target_end_;
  std::string pool_name_;
};

}  // namespace cosmos::pmem
