// MemoryLogDevice implementation: two images (visible, durable) and a
// persist-point counter driving crash and failure injection.
#include "kv/log_device_memory.h"

#include <cstring>
#include <random>

#include "common/endian.h"

namespace cosmos::kv {

MemoryLogDevice::MemoryLogDevice(uint64_t size)
    : size_(size), visible_(size, '\0'), durable_(size, '\0') {}

Status MemoryLogDevice::CheckRange(uint64_t offset, uint64_t len) const {
  if (offset > size_ || len > size_ - offset) {
    return Status::OutOfRange("memory device: range [" + std::to_string(offset) + ", +" +
                              std::to_string(len) + ") beyond size " + std::to_string(size_));
  }
  return Status::Ok();
}

Status MemoryLogDevice::PersistPoint() {
  ++persist_count_;
  if (crash_at_ != 0 && persist_count_ >= crash_at_) dead_ = true;
  if (dead_) return Status::IoError("memory device: injected power loss");
  if (fail_next_ > 0) {
    --fail_next_;
    return Status::IoError("memory device: injected flush failure");
  }
  return Status::Ok();
}

Status MemoryLogDevice::Read(uint64_t offset, void* out, size_t len) {
  std::lock_guard l(mu_);
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  if (len) std::memcpy(out, visible_.data() + offset, len);
  return Status::Ok();
}

Status MemoryLogDevice::Write(uint64_t offset, const void* data, size_t len) {
  std::lock_guard l(mu_);
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  if (dead_) return Status::IoError("memory device: injected power loss");
  if (len == 0) return Status::Ok();
  std::memcpy(visible_.data() + offset, data, len);
  if (unflushed_.size() < 100000) unflushed_.emplace_back(offset, len);
  return Status::Ok();
}

Status MemoryLogDevice::Flush(uint64_t offset, uint64_t len) {
  std::lock_guard l(mu_);
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  COSMOS_RETURN_IF_ERROR(PersistPoint());
  if (len) std::memcpy(durable_.data() + offset, visible_.data() + offset, len);
  return Status::Ok();
}

Status MemoryLogDevice::WriteAfterFlush(uint64_t offset, uint64_t value) {
  std::lock_guard l(mu_);
  if (offset % 8 != 0) return Status::InvalidArgument("memory device: misaligned WriteAfterFlush");
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, 8));
  COSMOS_RETURN_IF_ERROR(PersistPoint());
  StoreLE<uint64_t>(visible_.data() + offset, value);
  StoreLE<uint64_t>(durable_.data() + offset, value);
  return Status::Ok();
}

void MemoryLogDevice::CrashAtPersistPoint(uint64_t n) {
  std::lock_guard l(mu_);
  crash_at_ = n;
}

void MemoryLogDevice::FailNextPersists(uint64_t count) {
  std::lock_guard l(mu_);
  fail_next_ = count;
}

uint64_t MemoryLogDevice::persist_count() const {
  std::lock_guard l(mu_);
  return persist_count_;
}

void MemoryLogDevice::Crash(uint64_t tear_seed) {
  std::lock_guard l(mu_);
  if (tear_seed != 0) {
    std::mt19937_64 rng(tear_seed);
    for (auto [off, len] : unflushed_) {
      for (uint64_t w = off & ~7ull; w < off + len; w += 8) {
        if (rng() & 1) {
          uint64_t n = std::min<uint64_t>(8, size_ - w);
          std::memcpy(durable_.data() + w, visible_.data() + w, n);
        }
      }
    }
  }
  unflushed_.clear();
  visible_ = durable_;
  dead_ = false;
  crash_at_ = 0;
  fail_next_ = 0;
}

std::string MemoryLogDevice::DurableImage() const {
  std::lock_guard l(mu_);
  return durable_;
}

}  // namespace cosmos::kv
