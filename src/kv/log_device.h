// LogDevice: the minimal byte-addressable persistent storage interface the KV
// store is built on. It mirrors the remote persistent-memory client API
// (posted write, flush, write_after_flush) so pool and cosmosd backends are
// thin adapters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cosmos/result.h"
#include "cosmos/status.h"

namespace cosmos::kv {

// A fixed-size extent of storage addressed by byte offset.
//
// Semantics (after the SNIA NVM programming model, remote access):
//  - Write() is posted: the bytes are visible to Read() at once but are not
//    durable; a crash may keep any subset of not-yet-flushed bytes.
//  - Flush() returns only once the given range is durable.
//  - WriteAfterFlush() stores an aligned 8-byte value that is ordered after
//    every earlier Flush() and is itself durable on return (log tail pointers).
// Errors: OutOfRange for ranges outside [0, Size()), InvalidArgument for a
// misaligned WriteAfterFlush, IoError/Unavailable from the medium. After a
// failed Flush the flushed range is indeterminate.
// Thread-safety: implementations allow concurrent calls on disjoint ranges
// (one thread may Flush while another Reads or Writes elsewhere).
class LogDevice {
 public:
  virtual ~LogDevice() = default;

  // Capacity in bytes; constant for the device's lifetime.
  virtual uint64_t Size() const = 0;
  // Honest durability level of a completed Flush: "byte", "cacheline",
  // "page" or "none" (never durable: DRAM, tmpfs, simulations).
  virtual std::string_view DurabilityLevel() const = 0;
  // Human-readable backend name for logs and INFO ("memory", "local-file ...").
  virtual std::string_view BackendName() const = 0;

  // Copies `len` visible bytes at `offset` into `out`.
  [[nodiscard]] virtual Status Read(uint64_t offset, void* out, size_t len) = 0;
  // Posted write of `len` bytes: visible at once, durable only after Flush.
  [[nodiscard]] virtual Status Write(uint64_t offset, const void* data, size_t len) = 0;
  // Makes [offset, offset + len) durable; returns only once it is.
  [[nodiscard]] virtual Status Flush(uint64_t offset, uint64_t len) = 0;
  // REQUIRES: offset % 8 == 0. Stores `value` ordered after all earlier
  // flushes; durable on return.
  [[nodiscard]] virtual Status WriteAfterFlush(uint64_t offset, uint64_t value) = 0;

  // Number of other copies that hold every write this device has made
  // durable: the backups of a replicated region's current configuration
  // (every completed Flush was durable on each backup of the configuration it
  // ran in, and a configuration only loses failed copies or gains fully
  // resynced ones). A replicated device confirms the configuration with a
  // round trip first (a flush the primary forwards to every backup, so a
  // failed backup is removed before it is counted). 0 for a device that is
  // not replicated (every local backend, an unreplicated remote region).
  // Errors: those of Flush.
  [[nodiscard]] virtual Result<uint32_t> DurableBackups() { return 0u; }
};

}  // namespace cosmos::kv
