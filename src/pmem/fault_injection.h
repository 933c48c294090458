// In-memory twin of a pool medium with fault injection, for deterministic
// crash tests: it separates what the code has written (volatile view) from
// what has been made durable, fails chosen syncs and "crashes" at a chosen
// persist point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cosmos/result.h"
#include "pmem/mapping.h"

namespace cosmos::pmem {

// What happens to bytes that were not yet durable when the crash hits.
enum class CrashMode {
  // Every byte not yet persisted is lost (the durable image is kept as is).
  kDiscardUnpersisted,
  // Each 8-byte aligned word that differs between the volatile view and the
  // durable image independently lands or not (seeded): torn writes as left by
  // cache eviction or a partially completed flush. 8-byte aligned stores are
  // the only atomicity assumed, as on x86 persistent memory.
  kTearUnpersisted,
};

// The "device": owns the durable image, which outlives every mapping (a
// reboot is a new mapping of the same medium). Persist points are counted
// across all mappings of the medium: every Drain and every Persist (and
// MemcpyPersist) call is one point.
// Thread-safety: all methods may be called concurrently.
class FaultInjectionMedium : public std::enable_shared_from_this<FaultInjectionMedium> {
 public:
  // A zero-filled medium of `size` bytes.
  static std::shared_ptr<FaultInjectionMedium> Create(size_t size);
  // A medium whose durable image is `image` (e.g. a pool image read from a file).
  static std::shared_ptr<FaultInjectionMedium> FromImage(std::vector<std::byte> image);

  // The n-th persist point from now (1-based) crashes instead of completing;
  // 0 disarms. After the crash every persistence call of every mapping of the
  // medium returns IoError("simulated crash"), the durable image is frozen,
  // and the mapping's memory stays readable/writable (nothing reaches media).
  void CrashAtPersistPoint(uint64_t n, CrashMode mode = CrashMode::kDiscardUnpersisted,
                           uint64_t seed = 0);
  // The n-th persist point from now (1-based) returns IoError without making
  // anything durable (the flushed ranges stay pending); later calls work.
  void FailSyncAt(uint64_t n);

  bool crashed() const;
  uint64_t persist_points() const;  // persist points completed or crashed so far
  size_t size() const { return size_; }
  std::vector<std::byte> DurableImage() const;

  // A fresh mapping whose contents are the current durable image, as after a
  // restart. Clears the crashed state (the machine came back) but keeps the
  // persist point counter. Durability reported: `cacheline` (what the twin
  // simulates), never a real guarantee: nothing leaves process memory.
  Result<std::unique_ptr<Mapping>> Map();

 private:
  friend class FaultInjectionMapping;
  explicit FaultInjectionMedium(std::vector<std::byte> image);

  struct Range {
    size_t offset, len;
  };
  // Called by mappings with mu_ held by the caller of these helpers.
  Status PersistPoint(const std::byte* view, std::vector<Range>* pending);
  void TearInto(const std::byte* view);

  const size_t size_;
  mutable std::mutex mu_;
  std::vector<std::byte> durable_;
  uint64_t points_ = 0;
  uint64_t crash_at_ = 0;  // absolute point number; 0 = disarmed
  uint64_t fail_at_ = 0;
  CrashMode mode_ = CrashMode::kDiscardUnpersisted;
  uint64_t seed_ = 0;
  bool crashed_ = false;
  uint64_t epoch_ = 0;  // incremented by Map(); older mappings are dead
};

}  // namespace cosmos::pmem
