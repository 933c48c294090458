// The untrusted byte store a protected region lives in: the server implements
// it over a pmem region; tests use MemoryStore / CrashingStore. Everything in
// it may be read, modified, replayed or rolled back by the host.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "cosmos/status.h"
#include "sec/bytes.h"

namespace cosmos::sec {

// A byte range of a store.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Abstract untrusted byte store with the SNIA persist model: a Write is
// visible at once but durable only after a Persist covering it returns;
// Persist gives durability, not ordering between ranges of the same call.
// Implementations need not be thread-safe (the region engine serialises).
class UntrustedStore {
 public:
  virtual ~UntrustedStore() = default;
  // Current size in bytes.
  virtual uint64_t Size() const = 0;
  // Reads out.size() bytes at offset. OutOfRange past the end.
  [[nodiscard]] virtual Status Read(uint64_t offset, MutableByteSpan out) = 0;
  // Writes data at offset (not yet durable). OutOfRange past the end.
  [[nodiscard]] virtual Status Write(uint64_t offset, ByteSpan data) = 0;
  // Makes the given ranges durable. IoError if the device fails.
  [[nodiscard]] virtual Status Persist(std::span<const ByteRange> ranges) = 0;
};

// In-memory store (everything "durable" at once) with adversary helpers for
// tamper tests: direct byte access, bit flips, snapshot/restore, truncation.
class MemoryStore : public UntrustedStore {
 public:
  explicit MemoryStore(uint64_t size) : bytes_(size, 0) {}
  uint64_t Size() const override { return bytes_.size(); }
  Status Read(uint64_t offset, MutableByteSpan out) override;
  Status Write(uint64_t offset, ByteSpan data) override;
  Status Persist(std::span<const ByteRange> ranges) override;

  // Adversary access to the raw bytes.
  Bytes& bytes() { return bytes_; }
  void FlipBit(uint64_t offset, int bit) { bytes_.at(offset) ^= static_cast<uint8_t>(1u << bit); }
  Bytes Snapshot() const { return bytes_; }
  void Restore(const Bytes& snapshot) { bytes_ = snapshot; }
  void Truncate(uint64_t size) { bytes_.resize(size); }
  uint64_t persist_calls() const { return persist_calls_; }

 private:
  Bytes bytes_;
  uint64_t persist_calls_ = 0;
};

// Crash-injecting store: keeps a volatile image (what Reads see) and a
// durable image (what survives a crash). Persist copies ranges to the durable
// image. At the `crash_at`-th Persist call (1-based) the process "crashes":
// that call copies only a pseudo-random subset of its 8-byte words (a torn
// persist), optionally some other unpersisted words leak to the durable image
// too (cache write-back), and every later call returns IoError.
class CrashingStore : public UntrustedStore {
 public:
  struct Options {
    uint64_t crash_at = 0;         // 0 = never crash
    bool leak_unpersisted = true;  // unpersisted words may reach media at the crash
    uint64_t seed = 1;
  };
  // Starts from `initial` as both the volatile and the durable image.
  CrashingStore(Bytes initial, Options options);
  uint64_t Size() const override { return volatile_.size(); }
  Status Read(uint64_t offset, MutableByteSpan out) override;
  Status Write(uint64_t offset, ByteSpan data) override;
  Status Persist(std::span<const ByteRange> ranges) override;

  bool crashed() const { return crashed_; }
  uint64_t persist_calls() const { return persist_calls_; }
  // The bytes a restart would see.
  const Bytes& durable() const { return durable_; }
  // Everything written so far, persisted or not (what the host could read).
  const Bytes& written() const { return volatile_; }

 private:
  void Crash(std::span<const ByteRange> ranges);
  Bytes volatile_;
  Bytes durable_;
  Options options_;
  std::mt19937_64 rng_;
  uint64_t persist_calls_ = 0;
  bool crashed_ = false;
};

}  // namespace cosmos::sec
