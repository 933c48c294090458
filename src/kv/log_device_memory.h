// MemoryLogDevice: a DRAM LogDevice with fault injection (crash that keeps
// only flushed bytes, optional torn unflushed lines, failing flushes) used by
// tests to prove crash safety at every persist point. Durability: "none".
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kv/log_device.h"

namespace cosmos::kv {

// Thread-safety: all methods may be called concurrently (one internal mutex).
class MemoryLogDevice final : public LogDevice {
 public:
  // A zero-filled device of `size` bytes (both the visible and durable image).
  explicit MemoryLogDevice(uint64_t size);

  uint64_t Size() const override { return size_; }
  std::string_view DurabilityLevel() const override { return "none"; }
  std::string_view BackendName() const override { return "memory (test device, not durable)"; }

  Status Read(uint64_t offset, void* out, size_t len) override;
  Status Write(uint64_t offset, const void* data, size_t len) override;
  Status Flush(uint64_t offset, uint64_t len) override;
  Status WriteAfterFlush(uint64_t offset, uint64_t value) override;

  // Fault injection. Persist points are Flush and WriteAfterFlush calls,
  // counted from 1 since construction. When point `n` is reached the device
  // "loses power": that operation and every later one fails with IoError and
  // nothing more becomes durable. 0 disables.
  void CrashAtPersistPoint(uint64_t n);
  // The next `count` persist operations fail with IoError without persisting
  // anything; the device stays usable afterwards.
  void FailNextPersists(uint64_t count);
  // Persist operations performed so far (successful or not).
  uint64_t persist_count() const;

  // Simulates power loss and restart: the visible image becomes the durable
  // image. With `tear_seed` != 0, each 8-byte word written but not flushed
  // since the last crash survives with probability 1/2 (torn writes).
  // Afterwards the device is healthy again (fault settings cleared).
  void Crash(uint64_t tear_seed = 0);

  // A copy of the durable image (what a restart would see).
  std::string DurableImage() const;

 private:
  Status CheckRange(uint64_t offset, uint64_t len) const;
  Status PersistPoint();  // REQUIRES: mu_ held

  const uint64_t size_;
  mutable std::mutex mu_;
  std::string visible_;
  std::string durable_;
  std::vector<std::pair<uint64_t, uint64_t>> unflushed_;  // ranges written since last crash
  uint64_t persist_count_ = 0;
  uint64_t crash_at_ = 0;
  bool dead_ = false;
  uint64_t fail_next_ = 0;
};

}  // namespace cosmos::kv
